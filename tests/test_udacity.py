"""The seed's Udacity layout (conf/udacity.yaml): the labels must equal the seed's pandas conversion.

A small Udacity-like folder is generated here: labels_train.csv / labels_val.csv / labels_trainval.csv
(columns frame,xmin,xmax,ymin,ymax,class_id, integer pixel corners) and 480x300 JPEGs named by `frame`.
The expected labels come from an independent re-implementation of the seed's formula with pandas.
"""
from __future__ import annotations

import glob
import json
import os
import random
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image
from yololake.build.config import load_config
from yololake.build.main import run
from yololake.build.plan import JobInputs, annotation_paths
from yololake.dataset.versions import current_folder

CONFIG = Path(__file__).resolve().parents[1] / "conf" / "udacity.yaml"
W, H = 480, 300
COLUMNS = ["frame", "xmin", "xmax", "ymin", "ymax", "class_id"]
UNSAFE_FRAME = "../../x.jpg"
TOL = 1e-6


def make_udacity(root: str, frames: int = 30, val_frames: int = 10, seed: int = 11) -> dict:
    """Write a Udacity-like folder under `root`: labels/ (the three CSVs) and images/ (480x300 JPEGs).

    Planted: one box with swapped corners (xmin > xmax, ymin > ymax), one exact duplicate row, and one
    row whose frame id is `../../x.jpg` (no image). Returns the paths and the train/val frame names.
    """
    rng = random.Random(seed)
    labels_dir, images_dir = os.path.join(root, "labels"), os.path.join(root, "images")
    os.makedirs(labels_dir)
    os.makedirs(images_dir)
    names = [f"{1478019952686311006 + 1_000_037 * i}.jpg" for i in range(frames)]
    rng.shuffle(names)
    split_of = {name: ("val" if i < val_frames else "train") for i, name in enumerate(names)}

    rows: dict[str, list[list]] = {"train": [], "val": []}
    for name in sorted(names):
        color = tuple(rng.randrange(30, 220) for _ in range(3))
        Image.new("RGB", (W, H), color).save(os.path.join(images_dir, name), "JPEG", quality=80)
        for _ in range(rng.choice([1, 1, 2, 3, 5])):
            xmin, ymin = rng.randrange(0, W - 20), rng.randrange(0, H - 20)
            xmax, ymax = rng.randrange(xmin + 2, W + 1), rng.randrange(ymin + 2, H + 1)
            rows[split_of[name]].append([name, xmin, xmax, ymin, ymax, rng.randrange(1, 6)])

    train = rows["train"]
    _, xmin, xmax, ymin, ymax, _ = train[0]
    train[0][1:5] = [xmax, xmin, ymax, ymin]    # swapped corners: the seed's abs() gives the same box
    train.insert(3, list(train[3]))             # an exact duplicate row
    train.insert(5, [UNSAFE_FRAME, 10, 50, 20, 60, 1])

    frames_train = pd.DataFrame(rows["train"], columns=COLUMNS)
    frames_val = pd.DataFrame(rows["val"], columns=COLUMNS)
    frames_train.to_csv(os.path.join(labels_dir, "labels_train.csv"), index=False)
    frames_val.to_csv(os.path.join(labels_dir, "labels_val.csv"), index=False)
    pd.concat([frames_train, frames_val]).to_csv(os.path.join(labels_dir, "labels_trainval.csv"), index=False)
    return {
        "labels": labels_dir,
        "images": images_dir,
        "train": sorted(n for n in names if split_of[n] == "train"),
        "val": sorted(n for n in names if split_of[n] == "val"),
    }


def seed_labels(csv_paths: list[str]) -> dict[str, list[tuple]]:
    """The seed's conversion, re-done with pandas: per frame, (class_id - 1, cx, cy, w, h) on 480x300."""
    df = pd.concat([pd.read_csv(p) for p in csv_paths], ignore_index=True)
    expected: dict[str, list[tuple]] = {}
    for frame, group in df.groupby("frame"):
        expected[frame] = [
            (int(r.class_id) - 1,
             (r.xmin + r.xmax) / 2 / W,
             (r.ymin + r.ymax) / 2 / H,
             abs(r.xmax - r.xmin) / W,
             abs(r.ymax - r.ymin) / H)
            for r in group.itertuples()
        ]
    return expected


def _parse_label_file(path: str) -> list[tuple]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            fields = line.split(" ")
            assert len(fields) == 5, (path, line)
            cls, *coords = fields
            values = tuple(float(v) for v in coords)
            assert all(0.0 <= v <= 1.0 for v in values), (path, line)
            rows.append((int(cls), *values))
    return rows


def _same_rows(actual: list[tuple], expected: list[tuple]) -> bool:
    """Equal as sets of rows, coordinates to TOL (exact duplicate rows count once, as YOLOv5 does)."""
    unique = list(dict.fromkeys(expected))
    remaining = list(actual)
    for exp in unique:
        match = next((a for a in remaining
                      if a[0] == exp[0] and all(abs(x - y) <= TOL for x, y in zip(a[1:], exp[1:]))), None)
        if match is None:
            return False
        remaining.remove(match)
    return not remaining


@pytest.fixture(scope="module")
def udacity_run(spark, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("udacity"))
    data = make_udacity(os.path.join(root, "kaggle"))
    out = os.path.join(root, "dataset")
    summary = run(spark, load_config(CONFIG), JobInputs(annotations=(data["labels"],), images=data["images"]), out)
    return data, current_folder(out), summary


def test_a_folder_stands_for_the_split_files_only(tmp_path):
    folder = tmp_path / "labels"
    folder.mkdir()
    for name in ("labels_train.csv", "labels_val.csv", "labels_trainval.csv"):
        (folder / name).write_text(",".join(COLUMNS) + "\n")
    paths = annotation_paths((str(folder),), load_config(CONFIG))
    assert sorted(os.path.basename(p) for p in paths) == ["labels_train.csv", "labels_val.csv"]


@pytest.mark.slow
def test_labels_equal_the_seed_conversion(udacity_run):
    data, out, summary = udacity_run
    csvs = [os.path.join(data["labels"], n) for n in ("labels_train.csv", "labels_val.csv")]
    expected = seed_labels(csvs)
    expected.pop(UNSAFE_FRAME)

    written = {}
    for path in glob.glob(os.path.join(out, "labels", "*", "*", "*.txt")):
        split = Path(path).parents[1].name
        written[Path(path).stem] = (split, _parse_label_file(path))
    assert sorted(written) == sorted(f[: -len(".jpg")] for f in expected)
    for frame, rows in expected.items():
        split, actual = written[frame[: -len(".jpg")]]
        assert split == ("train" if frame in data["train"] else "val"), frame
        assert _same_rows(actual, rows), (frame, actual, rows)

    for split in ("train", "val"):
        with open(os.path.join(out, f"{split}.txt"), encoding="utf-8") as f:
            lines = f.read().splitlines()
        assert all(line.startswith(f"./images/{split}/") for line in lines), lines
        assert sorted(os.path.basename(line) for line in lines) == data[split]
        for line in lines:
            image = os.path.join(out, line)
            assert os.path.islink(image)
            assert os.path.realpath(image) == os.path.realpath(os.path.join(data["images"], os.path.basename(line)))
            with Image.open(image) as img:
                assert img.size == (W, H)
    assert not os.path.exists(os.path.join(out, "test.txt"))

    train_rows = len(pd.read_csv(csvs[0]))
    val_rows = len(pd.read_csv(csvs[1]))
    trainval_rows = len(pd.read_csv(os.path.join(data["labels"], "labels_trainval.csv")))
    assert trainval_rows == train_rows + val_rows
    with open(os.path.join(out, "stats.json"), encoding="utf-8") as f:
        stats = json.load(f)
    assert stats["rows_in"] == summary["rows_in"]
    assert stats["rows_in"] == train_rows + val_rows            # labels_trainval.csv was not read
    assert stats["duplicates_dropped"] == 1
    assert stats["boxes_written"] == train_rows + val_rows - 2  # minus the duplicate and the unsafe row
    assert stats["by_split"]["train"]["frames"] == len(data["train"])
    assert stats["by_split"]["val"]["frames"] == len(data["val"])
    assert stats["by_split"]["train"]["background"] == stats["by_split"]["val"]["background"] == 0

    with open(os.path.join(out, "dataset.yaml"), encoding="utf-8") as f:
        dataset = yaml.safe_load(f)
    assert dataset == {"path": out, "train": "train.txt", "val": "val.txt", "nc": 5,
                       "names": ["car", "truck", "pedestrian", "bicyclist", "light"],
                       "yololake_version": summary["version"]}
    assert os.path.exists(os.path.join(out, "_SUCCESS"))


@pytest.mark.slow
def test_unsafe_frame_id_is_quarantined(udacity_run, spark):
    data, out, summary = udacity_run
    assert summary["quarantined"] == 1
    assert summary["quarantine_by_reason"] == {"unsafe_frame_id": 1}
    rows = spark.read.parquet(os.path.join(out, "quarantine")).collect()
    assert [(r["reason"], r["frame_id"]) for r in rows] == [("unsafe_frame_id", UNSAFE_FRAME)]
    assert rows[0]["source_file"].endswith("/labels_train.csv")
    assert json.loads(rows[0]["source_row"])["frame"] == UNSAFE_FRAME
    # Nothing named after it was written anywhere, inside the dataset or above it.
    root = Path(out).parents[2]  # <root>/dataset/versions/<id>
    assert not [p for p in root.rglob("x.*")]
