"""Every image checked where it lives: damaged images planted at known frames are quarantined with their
reason (all rows of the frame), the dataset holds none of them, the lake is left byte-identical, and
YOLOv5's own scan of the result finds nothing corrupt and warns about nothing."""
from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image
from pyspark.sql import functions as F
from yololake.build.config import load_config
from yololake.build.image_facts import check_images, image_facts, jpeg_header
from yololake.build.main import run
from yololake.build.plan import JobInputs
from yololake.config import StorageConfig
from yololake.dataset import reasons as R
from yololake.dataset.versions import current_folder

CONFIG = Path(__file__).resolve().parents[1] / "conf" / "udacity.yaml"
W, H = 64, 40
COLUMNS = ["frame", "xmin", "xmax", "ymin", "ymax", "class_id"]


def _jpeg(size=(W, H), color=(90, 140, 60), **save) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=90, **save)
    return buf.getvalue()


def _image(fmt: str, size=(W, H)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, fmt)
    return buf.getvalue()


def _png_with_broken_stream() -> bytes:
    """A PNG whose IDAT holds bytes that are not a zlib stream, with a correct CRC: its header and chunk
    checksums pass (Pillow's verify), only decoding it fails."""
    png = _image("PNG")
    at = png.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", png[at:at + 4])
    body = bytes(range(7, 7 + length))
    chunk = png[at:at + 4] + b"IDAT" + body + struct.pack(">I", zlib.crc32(b"IDAT" + body))
    return png[:at] + chunk + png[at + 12 + length:]


# frame name -> (bytes, or None for no file; the reason its rows must carry, or None when it is good)
DAMAGED = {
    "truncated.jpg": (_jpeg()[:400], R.CORRUPT_IMAGE),
    "empty.jpg": (b"", R.CORRUPT_IMAGE),
    "text.jpg": (b"frame,xmin,xmax\nnot an image at all\n", R.CORRUPT_IMAGE),
    "padded.jpg": (_jpeg() + b"\x00" * 32, R.CORRUPT_IMAGE),       # YOLOv5 would rewrite it in place
    "tiny.jpg": (_jpeg((8, 6)), R.IMAGE_TOO_SMALL),
    "bigger.jpg": (_jpeg((80, 50)), R.IMAGE_SIZE_MISMATCH),          # image_size says 64x40
    "gone.jpg": (None, R.IMAGE_MISSING),
    "gif_inside.jpg": (_image("GIF"), R.UNSUPPORTED_IMAGE_FORMAT),
    "broken_stream.png": (_png_with_broken_stream(), R.CORRUPT_IMAGE),  # found by images.decode only
    "png_inside.jpg": (_image("PNG"), None),                          # YOLOv5 trains on it: kept
}


def _tree_digest(root: str) -> dict[str, tuple[str, int]]:
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, root)] = (hashlib.sha256(Path(path).read_bytes()).hexdigest(),
                                                os.stat(path).st_mtime_ns)
    return out


def make_damaged_lake(root: str) -> dict:
    """Udacity layout: 12 good 64x40 JPEGs and one frame per DAMAGED kind, 1-3 boxes each."""
    images, labels = os.path.join(root, "images"), os.path.join(root, "labels")
    os.makedirs(images)
    os.makedirs(labels)
    good = [f"good_{i:02d}.jpg" for i in range(12)]
    for name in good:
        Path(images, name).write_bytes(_jpeg(color=(20 * len(name), 90, 60)))
    for name, (data, _) in DAMAGED.items():
        if data is not None:
            Path(images, name).write_bytes(data)
    rows = {"train": [], "val": []}
    for i, name in enumerate(good + list(DAMAGED)):
        for b in range(1 + i % 3):
            rows["val" if i % 4 == 3 else "train"].append([name, 4 + b, 30 + b, 5, 30, 1 + b])
    for split, split_rows in rows.items():
        pd.DataFrame(split_rows, columns=COLUMNS).to_csv(os.path.join(labels, f"labels_{split}.csv"), index=False)
    return {"images": images, "labels": labels, "rows": rows}


@pytest.fixture(scope="module")
def damaged_run(spark, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("damaged"))
    lake = make_damaged_lake(os.path.join(root, "lake"))
    before = _tree_digest(lake["images"])
    config = load_config(CONFIG, ["image_size.width=64", "image_size.height=40", "images.decode=true",
                                  "quarantine.max_fraction=0.9", "report.enabled=false"])
    out = os.path.join(root, "dataset")
    summary = run(spark, config, JobInputs(annotations=(lake["labels"],), images=lake["images"]), out)
    return lake, current_folder(out), summary, before


@pytest.mark.slow
def test_each_damaged_image_quarantines_its_frame_and_the_lake_is_untouched(damaged_run, spark):
    lake, out, summary, before = damaged_run
    rows = spark.read.parquet(os.path.join(out, "quarantine")).select("frame_id", "reason").collect()
    got = pd.DataFrame([r.asDict() for r in rows]).groupby("frame_id")["reason"].agg(list).to_dict()
    all_rows = pd.DataFrame(lake["rows"]["train"] + lake["rows"]["val"], columns=COLUMNS)
    expected = {name: [reason] * int((all_rows.frame == name).sum())
                for name, (_, reason) in DAMAGED.items() if reason}
    assert got == expected
    assert summary["quarantine_by_reason"] == {r: sum(len(v) for k, v in expected.items() if DAMAGED[k][1] == r)
                                               for r in {reason for _, reason in DAMAGED.values() if reason}}
    assert summary["rows_in"] == len(all_rows) == summary["boxes_written"] + summary["quarantined"]

    written = {p.stem for p in Path(out, "labels").rglob("*.txt")}
    assert written == {Path(n).stem for n in all_rows.frame.unique() if n not in expected}
    assert {p.stem for p in Path(out, "images").rglob("*.*")} == written
    index = pq.read_table(os.path.join(out, "index")).to_pandas()
    assert set(index.key) == written
    png = index[index.key == "png_inside"].iloc[0]
    assert (png.image_format, png.ext, png.width, png.height) == ("png", "jpg", W, H)
    listed = "".join(Path(out, f"{s}.txt").read_text() for s in ("train", "val"))
    assert all(Path(name).stem not in listed for name in expected)
    assert _tree_digest(lake["images"]) == before  # not one byte, not one mtime changed in the lake


@pytest.mark.slow
def test_yolov5s_own_scan_of_the_built_dataset_finds_nothing_corrupt(damaged_run, tmp_path, capfd):
    from yololake.train import yolov5_env

    lake, out, summary, before = damaged_run
    os.environ["YOLOV5_CONFIG_DIR"] = yolov5_env.config_dir(str(tmp_path / "cfg"))
    from yolov5.utils import dataloaders

    for split, expected in summary["by_split"].items():
        lines = Path(out, f"{split}.txt").read_text().splitlines()
        listing = tmp_path / f"{split}.txt"  # another folder: no cache there, so YOLOv5 scans every image
        listing.write_text("".join(f"{out}/{line[2:]}\n" for line in lines))
        capfd.readouterr()
        dataloaders.LoadImagesAndLabels(str(listing), img_size=64, batch_size=4, workers=0)
        logged = capfd.readouterr().err
        cache = np.load(tmp_path / f"{split}.cache", allow_pickle=True).item()
        assert cache["results"] == (expected["frames"], 0, expected["background"], 0, expected["frames"])
        assert cache["msgs"] == [] and "WARNING" not in logged and "corrupt JPEG" not in logged, logged
        assert f"{expected['frames']} images, 0 backgrounds, 0 corrupt" in logged
    assert _tree_digest(lake["images"]) == before


def test_the_header_walk_agrees_with_pillow():
    from yololake.build.image_facts import _pillow

    variants = [{}, {"progressive": True}, {"icc_profile": b"\0" * 70_000}]
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        variants.append({"exif": exif.tobytes()})
    for save in variants:
        for size, mode in (((64, 40), "RGB"), ((33, 17), "L"), ((40, 64), "CMYK")):
            buf = io.BytesIO()
            Image.new("RGB", size, (10, 90, 200)).convert(mode).save(buf, "JPEG", **save)
            data = buf.getvalue()
            try:
                walked = jpeg_header(data[:1024])
            except Exception:  # noqa: BLE001 - runs past 1 KiB (the ICC profile): then from every byte
                walked = jpeg_header(data)
            fmt, w, h, orientation = _pillow(io.BytesIO(data), decode=False)
            assert walked == (w, h, orientation) and fmt == "jpeg", (save.keys(), size, mode)
    assert jpeg_header(_image("PNG")) is None and jpeg_header(b"") is None


def test_decode_finds_what_the_header_read_cannot(tmp_path):
    path = tmp_path / "broken_stream.png"
    path.write_bytes(_png_with_broken_stream())
    assert image_facts(str(path), StorageConfig()).image_reason is None  # header and chunk CRCs are fine
    assert image_facts(str(path), StorageConfig(), decode=True).image_reason == R.CORRUPT_IMAGE
    good = tmp_path / "good.jpg"
    good.write_bytes(_jpeg())
    assert image_facts(str(good), StorageConfig(), decode=True) == image_facts(str(good), StorageConfig())


def test_images_on_s3_are_checked_in_one_get_each(s3_bucket):
    import s3fs

    endpoint, bucket = s3_bucket
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
    for name in ("truncated.jpg", "tiny.jpg", "png_inside.jpg"):
        fs.pipe_file(f"{bucket}/img/{name}", DAMAGED[name][0])
    fs.pipe_file(f"{bucket}/img/good.jpg", _jpeg())
    names = ["good.jpg", "truncated.jpg", "tiny.jpg", "png_inside.jpg", "gone.jpg"]
    facts = check_images([f"s3://{bucket}/img/{n}" for n in names] + [None],
                         StorageConfig(endpoint_url=endpoint), decode=False, threads=4)
    assert [f.image_reason for f in facts] == [None, R.CORRUPT_IMAGE, R.IMAGE_TOO_SMALL, None, R.IMAGE_MISSING, None]
    assert (facts[0].image_format, facts[0].stored_width, facts[0].stored_height, facts[0].orientation,
            facts[0].image_bytes) == ("jpeg", W, H, 1, len(_jpeg()))
    assert facts[3].image_format == "png" and facts[5].image_format is None


def test_a_given_size_is_checked_against_the_displayed_one(spark):
    from yololake.build.transforms.frames import apply_image_facts

    rows = [  # frame_id, width, height (given), frame_reason, stored_width, stored_height, orientation, image_reason
        ("same", 480, 300, None, 480, 300, 1, None),
        ("turned", 480, 300, None, 300, 480, 6, None),        # shown 480x300: what the labels were drawn on
        ("stored_given", 300, 480, None, 300, 480, 8, None),  # the manifest gave the stored size, not the shown one
        ("mirrored", 300, 480, None, 480, 300, 5, None),      # 5 and 7 turn a quarter too
        ("other", 640, 400, None, 480, 300, 1, None),
        ("bad", 480, 300, None, None, None, None, R.CORRUPT_IMAGE),
        ("flagged", 480, 300, R.UNSAFE_FRAME_ID, None, None, None, None),
    ]
    frames = spark.createDataFrame(rows, "frame_id string, width int, height int, frame_reason string, "
                                         "stored_width int, stored_height int, orientation int, image_reason string")

    def outcome(df, sizes_given, policy):
        return {r.frame_id: (r.frame_reason, r.width, r.height)
                for r in apply_image_facts(df, sizes_given, policy).collect()}

    mismatch = R.IMAGE_SIZE_MISMATCH
    assert outcome(frames, True, "quarantine") == {
        "same": (None, 480, 300), "turned": (None, 480, 300), "stored_given": (mismatch, 480, 300),
        "mirrored": (None, 300, 480), "other": (mismatch, 480, 300), "bad": (R.CORRUPT_IMAGE, 480, 300),
        "flagged": (R.UNSAFE_FRAME_ID, 480, 300)}
    trusted = outcome(frames, True, "trust_image")
    assert trusted["stored_given"] == trusted["other"] == (None, 480, 300)
    unknown = outcome(frames.withColumn("width", F.lit(None).cast("int")).withColumn("height", F.lit(None).cast("int")),
                      False, "quarantine")
    assert unknown["other"] == (None, 480, 300) and unknown["turned"] == (None, 480, 300)
    assert unknown["bad"] == (R.CORRUPT_IMAGE, None, None)


def test_a_header_past_the_first_reads_is_read_whole(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "camera.jpg"  # a 70 KB ICC profile: the header ends past the first 4 KiB and 64 KiB reads
    path.write_bytes(_jpeg(exif=exif.tobytes(), icc_profile=b"\0" * 70_000))
    facts = image_facts(str(path), StorageConfig())
    assert facts == ("jpeg", W, H, 6, path.stat().st_size, None)
