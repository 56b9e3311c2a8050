"""Messy inputs never become wrong labels (issue 16): per-file CSV headers, malformed rows, empty, zero-byte and
truncated files, class ids written as floats, absurd boxes. Each case on a tiny Udacity-layout lake
(conf/udacity.yaml); the counts reconcile in every run that commits, and a run that fails commits nothing.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from yololake.build.config import load_config
from yololake.build.main import main, run
from yololake.build.plan import JobInputs
from yololake.config import TableConfig
from yololake.dataset.versions import current_folder
from yololake.errors import InputError, QuarantineThresholdError
from yololake.tables import read_input_table

pytestmark = pytest.mark.slow
CONFIG = Path(__file__).resolve().parents[1] / "conf" / "udacity.yaml"
W, H = 480, 300
SEED_HEADER = "frame,xmin,xmax,ymin,ymax,class_id"
# No images: these tests are about labels and counts.
TINY = ["images.mode=none", "images.check_exists=false", "report.enabled=false"]

TRAIN_ROWS = [
    "t1.jpg,10,50,20,60,1",
    "t2.jpg,100,200,50,150,2.0",           # a class id after a pandas round trip
    "t3.jpg,10,50,20,60,2,EXTRA,MORE",     # too many fields
    "t4.jpg,10,50,20",                     # too few fields
    "t5.jpg,-20,500,20,60,3",              # partly outside: clipped
    "t6.jpg,10,1e30,20,60,1",              # one absurd corner
    "t7.jpg,-1e30,1e30,-1e30,1e30,1",      # all four absurd
    "t8.jpg,300,400,100,200,5.0",
]
VAL_HEADER = "frame,xmin,ymin,xmax,ymax,class_id"  # the same columns in another order
VAL_ROWS = ["v1.jpg,10,20,50,60,3", "v2.jpg,100,50,200,150,1.0"]
EXPECTED = {  # frame -> YOLO line (class id = class_id - 1), from the pixel corners above
    "t1": "0 0.062500 0.133333 0.083333 0.133333",
    "t2": "1 0.312500 0.333333 0.208333 0.333333",
    "t5": "2 0.500000 0.133333 1.000000 0.133333",
    "t8": "4 0.729167 0.500000 0.208333 0.333333",
    "v1": "2 0.062500 0.133333 0.083333 0.133333",
    "v2": "0 0.312500 0.333333 0.208333 0.333333",
}


def _csv_lake(root: Path, train: list[str] | None = None, val: list[str] | None = None,
              val_header: str = VAL_HEADER) -> Path:
    folder = root / "labels"
    folder.mkdir(parents=True)
    (folder / "labels_train.csv").write_text("\n".join([SEED_HEADER, *(TRAIN_ROWS if train is None else train)]) + "\n")
    (folder / "labels_val.csv").write_text("\n".join([val_header, *(VAL_ROWS if val is None else val)]) + "\n")
    return folder


def _job(tmp_path: Path, annotations: Path, *overrides: str) -> tuple[int, list[str], Path]:
    """The build-dataset command as a user runs it; returns its exit code, its stderr lines and --out."""
    out = tmp_path / "out"
    args = ["--config", str(CONFIG), "--annotations", str(annotations), "--out", str(out)]
    for item in (*TINY, *overrides):
        args += ["--set", item]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(args)
    return code, err.getvalue().strip().splitlines(), out


def _labels(out: str) -> dict[str, str]:
    return {p.stem: p.read_text().rstrip("\n") for p in Path(out).glob("labels/*/*/*.txt")}


def _reconciles(summary: dict) -> bool:
    return summary["rows_in"] == summary["boxes_written"] + summary["quarantined"] + summary["duplicates_dropped"]


@pytest.fixture(scope="module")
def messy_csv_run(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("messy")
    labels = _csv_lake(root)
    config = load_config(CONFIG, [*TINY, "quarantine.max_fraction=0.5"])
    out = str(root / "out")
    return run(spark, config, JobInputs((str(labels),)), out), current_folder(out)


def test_each_csv_is_read_by_its_own_header(messy_csv_run):
    summary, out = messy_csv_run
    assert _labels(out) == {frame: line for frame, line in EXPECTED.items()}
    assert {p.parent.parent.name for p in Path(out).glob("labels/*/*/v*.txt")} == {"val"}
    assert summary["by_split"]["val"]["boxes"] == 2


def test_malformed_rows_and_absurd_boxes_are_quarantined_and_counted(messy_csv_run):
    summary, out = messy_csv_run
    assert summary["quarantine_by_reason"] == {"malformed_row": 2, "box_outside_image": 2}
    assert (summary["rows_in"], summary["boxes_written"], summary["quarantined"]) == (10, 6, 4)
    assert summary["boxes_clipped"] == 1 and _reconciles(summary)
    with open(os.path.join(out, "stats.json"), encoding="utf-8") as f:
        assert json.load(f)["boxes_clipped"] == 1
    rows = {r["frame_id"]: r for r in pq.read_table(os.path.join(out, "quarantine")).to_pylist()}
    assert {f: r["reason"] for f, r in rows.items()} == {
        "t3.jpg": "malformed_row", "t4.jpg": "malformed_row", "t6.jpg": "box_outside_image",
        "t7.jpg": "box_outside_image"}
    assert rows["t3.jpg"]["source_file"].endswith("/labels_train.csv")
    assert json.loads(rows["t3.jpg"]["source_row"])["_corrupt_record"] == TRAIN_ROWS[2]  # the line as written
    assert json.loads(rows["t4.jpg"]["source_row"])["_corrupt_record"] == TRAIN_ROWS[3]
    assert summary["frames_by_status"]["all_boxes_quarantined"] == 2  # t6, t7: not written as background


def test_a_malformed_row_is_found_however_few_columns_are_read(spark, tmp_path):
    labels = _csv_lake(tmp_path)
    df = read_input_table(spark, [str(labels / "labels_train.csv")], TableConfig(format="csv")).df
    rows = df.select("frame", "_corrupt_record").collect()
    assert sorted(r["frame"] for r in rows if r["_corrupt_record"]) == ["t3.jpg", "t4.jpg"]


def test_a_header_without_a_configured_column_fails_naming_file_and_column(tmp_path):
    labels = _csv_lake(tmp_path, val_header="frame,x_min,ymin,xmax,ymax,class_id")
    code, err, out = _job(tmp_path, labels)
    assert code == 2
    assert err == [f"build_dataset: error: CSV file {labels}/labels_val.csv has no column 'xmin' in its "
                   "header (frame, x_min, ymin, xmax, ymax, class_id); every file must name the configured "
                   "columns: fix the file or the config"]
    assert not out.exists()


def test_header_only_inputs_fail_with_one_line(tmp_path):
    code, err, out = _job(tmp_path, _csv_lake(tmp_path / "none", train=[], val=[]))
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("build_dataset: error: the annotations hold no rows (")
    assert not (out / "dataset.yaml").exists()  # no version became current

    code, err, out = _job(tmp_path / "train", _csv_lake(tmp_path / "train", train=[]))
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("build_dataset: error: no frame is left for the train split (frames by status: "
                             '{"labeled": 2})')
    assert not (out / "dataset.yaml").exists()  # no version became current and not (out / "train.txt").exists()


def test_unmapped_class_values_are_shown_beside_the_configured_ones(spark, tmp_path):
    labels = _csv_lake(tmp_path, train=[f"t{i}.jpg,10,50,20,60,{i % 3 + 1}.5" for i in range(9)], val=[])
    with pytest.raises(QuarantineThresholdError) as info:
        run(spark, load_config(CONFIG, TINY), JobInputs((str(labels),)), str(tmp_path / "out"))
    assert ("Most of them are unknown_class: the commonest class values are '1.5' (3 rows), '2.5' (3 rows), "
            "'3.5' (3 rows), but classes.map has 1, 2, 3, 4, 5.") in str(info.value)


def _parquet_lake(root: Path, *broken: str) -> Path:
    """drive=a and drive=b hold 20 good rows each; each name in `broken` ('empty', 'truncated') adds a file."""
    folder = root / "annotations"
    for drive in ("a", "b", *broken):
        (folder / f"drive={drive}").mkdir(parents=True)
        frames = [f"{drive}{i}.jpg" for i in range(20)]
        table = pa.table({"frame": frames, "xmin": [10.0] * 20, "xmax": [50.0] * 20, "ymin": [20.0] * 20,
                          "ymax": [60.0] * 20, "class_id": [1] * 20})
        path = folder / f"drive={drive}" / "part-0.parquet"
        pq.write_table(table, path)
        if drive == "empty":
            path.write_bytes(b"")
        elif drive == "truncated":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return folder


HASH_SPLIT = ["annotations.format=parquet", "split.mode=hash", "split.column=frame"]


@pytest.mark.parametrize("broken, problem", [
    ("empty", "the file is empty (0 bytes)"),
    ("truncated", "is not a Parquet file. Expected magic number at tail, but found ["),
])
def test_an_unreadable_parquet_file_fails_naming_it(tmp_path, broken, problem):
    lake = _parquet_lake(tmp_path, broken)
    code, err, out = _job(tmp_path, lake, *HASH_SPLIT)
    assert code == 2 and len(err) == 1, err
    head, _, tail = err[0].partition(problem)
    assert head == f"build_dataset: error: cannot read annotations file {lake}/drive={broken}/part-0.parquet: ", err
    assert tail.endswith(". Fix or remove the file, or set annotations.on_unreadable_file: quarantine"), err
    assert not (out / "dataset.yaml").exists()  # no version became current


def test_unreadable_files_can_be_quarantined_and_counted(spark, tmp_path):
    lake = _parquet_lake(tmp_path, "empty", "truncated")
    config = load_config(CONFIG, [*TINY, *HASH_SPLIT, "annotations.on_unreadable_file=quarantine"])
    summary = run(spark, config, JobInputs((str(lake),)), str(tmp_path / "out"))
    version = Path(current_folder(str(tmp_path / "out")))
    assert (summary["rows_in"], summary["boxes_written"], summary["quarantined"]) == (42, 40, 2)
    assert summary["quarantine_by_reason"] == {"unreadable_file": 2} and _reconciles(summary)
    listed = {os.path.basename(os.path.dirname(u["path"])): u["problem"] for u in summary["unreadable_files"]}
    assert listed["drive=empty"] == "the file is empty (0 bytes)"
    assert "is not a Parquet file" in listed["drive=truncated"]
    with open(version / "stats.json", encoding="utf-8") as f:
        assert json.load(f)["unreadable_files"] == summary["unreadable_files"]
    rows = pq.read_table(version / "quarantine").to_pylist()
    assert sorted(os.path.basename(os.path.dirname(r["source_file"])) for r in rows) == [
        "drive=empty", "drive=truncated"]
    assert all(r["reason"] == "unreadable_file" and r["frame_id"] is None for r in rows)
    assert len(_labels(version)) == 40  # the readable files, whole; drive=a and drive=b kept as columns


def test_a_file_spark_cannot_infer_a_schema_from_and_an_empty_folder(spark, tmp_path):
    lake = _parquet_lake(tmp_path, "truncated")
    only = lake / "drive=truncated"
    with pytest.raises(InputError, match=rf"^cannot read annotations file {only}/part-0.parquet: is not a "
                                         r"Parquet file"):
        read_input_table(spark, [str(only)], TableConfig(format="parquet"))
    (tmp_path / "nothing").mkdir()
    with pytest.raises(InputError, match=rf"^annotations path {tmp_path}/nothing holds no files to read"):
        read_input_table(spark, [str(tmp_path / "nothing")], TableConfig(format="parquet"))


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs mounted under tmp_path (needs root: skipped elsewhere); unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def test_a_full_disk_during_the_report_exits_2_naming_the_report(messy_csv_run, small_disk, capsys):
    from yololake.report.main import main as report_main

    _, out = messy_csv_run
    dataset = small_disk / "dataset"
    shutil.copytree(out, dataset, symlinks=True)
    with open(small_disk / "filler", "wb") as f:  # fill the disk to the last byte
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    code = report_main([str(dataset)])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"report: error: cannot write the report {dataset}/report: OSError: [Errno 28] No space left on device; "
        "nothing of it was kept. Free space or fix the folder's permissions, then run `yololake report`"]
    assert not [p for p in os.listdir(dataset) if "report" in p]


def test_json_a_zero_byte_file_fails_and_a_line_that_is_not_json_is_malformed(spark, tmp_path):
    folder = tmp_path / "json"
    folder.mkdir()
    (folder / "a.json").write_text('{"frame": "a.jpg", "class_id": 1}\n{"frame": "b.jpg", \n')
    (folder / "b.json").write_bytes(b"")
    with pytest.raises(InputError) as info:
        read_input_table(spark, [str(folder)], TableConfig(format="json"))
    assert str(info.value) == (f"cannot read annotations file {folder}/b.json: the file is empty (0 bytes). Fix or "
                               "remove the file, or set annotations.on_unreadable_file: quarantine")
    table = read_input_table(spark, [str(folder)], TableConfig(format="json"), on_unreadable="quarantine")
    assert [os.path.basename(u.path) for u in table.unreadable] == ["b.json"]
    rows = {r["frame"]: r["_corrupt_record"] for r in table.df.collect()}
    assert rows == {"a.jpg": None, None: '{"frame": "b.jpg", '}


def test_files_of_one_folder_with_different_headers_are_each_read_by_name(spark, tmp_path):
    # The same box, xmin=1 ymin=2 xmax=3 ymax=4, in each file's own column order.
    for drive, header, row in (("a", SEED_HEADER, "a.jpg,1,3,2,4,1"), ("b", VAL_HEADER, "b.jpg,1,2,3,4,2")):
        (tmp_path / f"drive={drive}").mkdir()
        (tmp_path / f"drive={drive}" / "labels.csv").write_text(f"{header}\n{row}\n")
    df = read_input_table(spark, [str(tmp_path)], TableConfig(format="csv"), required=["frame", "xmax"]).df
    rows = {r["frame"]: (r["xmin"], r["ymin"], r["xmax"], r["ymax"], r["class_id"], r["drive"]) for r in df.collect()}
    assert rows == {"a.jpg": ("1", "2", "3", "4", "1", "a"), "b.jpg": ("1", "2", "3", "4", "2", "b")}


def test_a_zero_byte_file_is_found_whatever_its_name(spark, tmp_path):
    folder = tmp_path / "d=a b"  # names that Spark lists URI-encoded: a space, a percent sign
    folder.mkdir()
    pq.write_table(pa.table({"x": [1]}), folder / "ok 100%.parquet")
    (folder / "empty 0%41.parquet").write_bytes(b"")
    with pytest.raises(InputError, match=rf"^cannot read annotations file {folder}/empty 0%41.parquet: the file is "
                                         r"empty \(0 bytes\)"):
        read_input_table(spark, [str(tmp_path)], TableConfig(format="parquet"))
