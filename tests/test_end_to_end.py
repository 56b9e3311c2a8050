"""The job end to end on the generated lake: counts reconcile, planted rows quarantined, nothing outside OUT."""
from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow


def _list_lines(out, split):
    with open(os.path.join(out, f"{split}.txt"), encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def test_counts_reconcile_and_quarantine_matches_what_was_planted(demo_dataset):
    out, summary, planted, _ = demo_dataset
    assert summary["rows_in"] == planted["rows"]
    assert summary["rows_in"] == summary["boxes_written"] + summary["quarantined"] + summary["duplicates_dropped"]
    assert summary["quarantine_by_reason"] == planted["quarantined_by_reason"]
    assert summary["duplicates_dropped"] == planted["duplicates"]
    quarantine = pq.read_table(os.path.join(out, "quarantine")).to_pylist()
    by_reason = {}
    for row in quarantine:
        by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + 1
        assert json.loads(row["source_row"])["frame_id"] == row["frame_id"]
        assert "drive=" in row["source_file"]
    assert by_reason == planted["quarantined_by_reason"]
    with open(os.path.join(out, "stats.json"), encoding="utf-8") as f:
        assert json.load(f)["boxes_written"] == summary["boxes_written"]


def test_labels_are_what_yolov5_accepts_and_sum_to_the_boxes_written(demo_dataset):
    out, summary, _, _ = demo_dataset
    total = 0
    for split in summary["by_split"]:
        boxes = 0
        for line in _list_lines(out, split):
            assert line.startswith(f"./images/{split}/")
            image = os.path.join(out, line[2:])
            assert os.path.isfile(image), image  # symlink resolves
            label = os.path.join(out, "labels", line[len("./images/"):]).rsplit(".", 1)[0] + ".txt"
            with open(label, encoding="utf-8") as f:
                rows = f.read().splitlines()
            assert len(rows) == len(set(rows)), label  # no duplicate rows (YOLOv5 warns on them)
            for row in rows:
                cls, *coords = row.split(" ")
                assert 0 <= int(cls) < 5 and len(coords) == 4
                assert all(len(c.split(".")[1]) == 6 and 0.0 <= float(c) <= 1.0 for c in coords), row
            boxes += len(rows)
        assert boxes == summary["by_split"][split]["boxes"]
        total += boxes
    assert total == summary["boxes_written"]


def test_background_frames_get_empty_labels_and_videos_do_not_straddle_splits(demo_dataset):
    out, summary, _, lake = demo_dataset
    index = pq.read_table(os.path.join(out, "index")).to_pylist()
    assert len(index) == summary["frames_written"]
    background = [r for r in index if r["status"] == "background"]
    assert background and all(r["box_count"] == 0 for r in background)
    for r in background:
        assert os.path.getsize(os.path.join(out, "labels", r["split"], r["shard"], r["key"] + ".txt")) == 0
    videos = {r["frame_id"]: r["video_id"] for r in pq.read_table(os.path.join(lake, "frames")).to_pylist()}
    split_of_video = {}
    for r in index:
        split_of_video.setdefault(videos[r["frame_id"]], set()).add(r["split"])
    assert all(len(s) == 1 for s in split_of_video.values())
    assert {"train", "val", "test"} == {s for splits in split_of_video.values() for s in splits}


def test_nothing_is_written_outside_out(demo_dataset):
    _, summary, _, _ = demo_dataset
    out = summary["root"]
    parent = os.path.dirname(out)
    assert os.listdir(parent) == ["out"]
    assert os.listdir(os.path.dirname(parent)) == ["deep"]
    assert not os.path.exists("/tmp/yololake_abs.txt")
    real_out = os.path.realpath(out)
    for folder, dirs, files in os.walk(out):
        # No temporaries left (Spark's own .crc checksums of its parquet parts aside).
        assert not any(n.startswith(".") and not n.endswith(".crc") for n in dirs + files), folder
        for name in files:
            path = os.path.join(folder, name)
            # Files are inside OUT; only image symlinks point out (to the lake).
            assert os.path.realpath(os.path.dirname(path)).startswith(real_out)
            if os.path.islink(path):
                assert os.path.join(os.sep, "images", "") in os.readlink(path)


def test_dataset_yaml_and_commit_markers(demo_dataset):
    import yaml

    out, summary, _, _ = demo_dataset
    with open(os.path.join(out, "dataset.yaml"), encoding="utf-8") as f:
        data = yaml.safe_load(f)
    assert data == {"path": out, "train": "train.txt", "val": "val.txt", "test": "test.txt", "nc": 5,
                    "names": ["car", "truck", "pedestrian", "bicyclist", "light"],
                    "yololake_version": summary["version"]}
    with open(os.path.join(summary["root"], "dataset.yaml"), encoding="utf-8") as f:
        assert yaml.safe_load(f) == data  # the pointer: a copy of the current version's
    with open(os.path.join(out, "_SUCCESS"), encoding="utf-8") as f:
        assert json.load(f)["boxes"] == summary["boxes_written"]
    with open(os.path.join(out, "shards.json"), encoding="utf-8") as f:
        shards = json.load(f)
    assert sum(s["frames"] for s in shards) == summary["frames_written"]
    assert not os.path.exists(os.path.join(out, "_lists"))
    # The report is rendered by the job before the commit (report.enabled in conf/demo.yaml).
    with open(os.path.join(out, "report", "index.html"), encoding="utf-8") as f:
        assert str(summary["boxes_written"]) in f.read()
