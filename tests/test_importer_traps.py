"""The labeling tools' traps, planted in each export beside the known boxes: each row lands under its reason
code (or is written, by the documented policy), the known boxes still come back, and the counts reconcile."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from exports import (
    BOXES,
    IMAGES,
    NAMES,
    build,
    cvat_box,
    expected_labels,
    gt_line,
    ls_result,
    read_labels,
    same_labels,
    voc_xml,
    write_coco,
    write_cvat_images,
    write_groundtruth,
    write_images,
    write_labelstudio,
    write_voc,
)
from yololake.dataset import reasons as R
from yololake.dataset.versions import current_folder

pytestmark = pytest.mark.slow
EXTRA = {}  # format -> boxes a policy writes beside the truth: {image: [(class, x1, y1, x2, y2)]}


def coco_traps(root: Path) -> tuple[str, dict, tuple]:
    a = 100  # a.jpg's image id
    bad = [{"id": 1, "image_id": a, "category_id": 3, "bbox": [1, 1, 5, 5], "iscrowd": 1},      # a crowd region
           {"id": 2, "image_id": 99999, "category_id": 3, "bbox": [1, 1, 5, 5], "iscrowd": 0},  # no such image
           {"id": 3, "image_id": a, "category_id": 5, "bbox": [1, 1, 5, 5], "iscrowd": 0},      # in an id gap
           {"id": 4, "image_id": a, "category_id": 3, "bbox": "oops", "iscrowd": 0}]           # not a detection
    reasons = {R.CROWD_BOX: 1, R.IMAGE_NOT_IN_EXPORT: 1, R.UNKNOWN_CLASS: 1, R.MALFORMED_ROW: 1}
    return write_coco(root / "instances.json", annotations_extra=bad), reasons, ()


def voc_traps(root: Path) -> tuple[str, dict, tuple]:
    folder = write_voc(root / "voc")
    Path(folder, "a.xml").write_text(voc_xml("a.jpg", IMAGES["a.jpg"], [("car", 4, 6, 30, 40), ("person", 10, 2, 20, 47),
                                                                        ("car", 1, 1, 9, 9)], difficult={2}))
    Path(folder, "broken.xml").write_text("<annotation><filename>x.jpg</filename><object>")
    return folder, {R.DIFFICULT: 1, R.MALFORMED_ROW: 1}, ("annotations.difficult=quarantine",)


def cvat_traps(root: Path) -> tuple[str, dict, tuple]:
    folder = root / "cvat"
    os.makedirs(folder)
    write_cvat_images(folder / "annotations.xml", extra_boxes={
        "a.jpg": [cvat_box("car", 10, 10, 20, 20, rotation=30)],
        "b.jpg": [cvat_box("bike", 70, 50, 95, 70)]})          # beyond the 80x60 image: clipped to it
    EXTRA["cvat"] = {"b.jpg": [("bike", 70, 50, 80, 60)]}
    (folder / "broken.xml").write_text("<annotations><image name='q.jpg'>")
    return str(folder), {R.ROTATED_BOX: 1, R.MALFORMED_ROW: 1}, ()


def labelstudio_traps(root: Path) -> tuple[str, dict, tuple]:
    for sub in ("7", "local"):
        write_images(root / "images" / sub)
    (w, h), (bw, bh) = IMAGES["a.jpg"], IMAGES["b.jpg"]
    rotated = ls_result("car", 10, 10, 20, 20, w, h, rotation=30)
    negative = ls_result("bike", 30, 40, 10, 20, bw, bh)                 # drawn right to left, bottom to top
    unsized = ls_result("car", 1, 1, 5, 5, w, h)
    del unsized["original_width"]
    EXTRA["labelstudio"] = {"b.jpg": [("bike", 10, 20, 30, 40)]}
    export = write_labelstudio(root / "export.json", extra_tasks=[42, {"id": 99, "annotations": []}],
                               extra_results={"a.jpg": [rotated, unsized], "b.jpg": [negative]})
    return export, {R.ROTATED_BOX: 1, R.MISSING_IMAGE_SIZE: 1, R.MALFORMED_ROW: 2}, ()


def groundtruth_traps(root: Path) -> tuple[str, dict, tuple]:
    line = gt_line("c.jpg", IMAGES["c.jpg"], [])
    line["cars-job"]["annotations"] = [{"class_id": 5, "left": 1, "top": 1, "width": 4, "height": 4}]
    extra = ['{"source-ref": "x.jpg", "cars-job": {', json.dumps(line)]
    return write_groundtruth(root / "output.manifest", extra), {R.MALFORMED_ROW: 1, R.UNKNOWN_CLASS: 1}, ()


TRAPS = {"coco": coco_traps, "voc": voc_traps, "cvat": cvat_traps, "labelstudio": labelstudio_traps,
         "groundtruth": groundtruth_traps}


@pytest.mark.parametrize("fmt", list(TRAPS))
def test_traps_have_their_reasons(spark, tmp_path, fmt):
    images = write_images(tmp_path / "images")
    export, reasons, overrides = TRAPS[fmt](tmp_path)
    summary = build(spark, fmt, export, images, tmp_path / "out", overrides=("quarantine.max_fraction=0.9",
                                                                              *overrides))
    assert summary["quarantine_by_reason"] == reasons
    assert summary["rows_in"] == summary["boxes_written"] + summary["quarantined"] + summary["duplicates_dropped"]
    assert summary["boxes_clipped"] == (1 if fmt == "cvat" else 0)
    version = current_folder(str(tmp_path / "out"))
    boxes = {k: list(v) for k, v in BOXES.items()}
    for name, extra in EXTRA.get(fmt, {}).items():
        boxes[name] = boxes[name] + extra
    assert same_labels(read_labels(version), expected_labels(NAMES[fmt], boxes))
    q = pd.concat(pd.read_parquet(p) for p in Path(version, "quarantine").glob("*.parquet"))
    assert q.groupby("reason").size().to_dict() == reasons
    for row in q.itertuples():  # every quarantined row names its file and where in it
        assert row.source_file.startswith(("file:", "/")) and str(export).rstrip("/").split("/")[-1] in row.source_file
        assert json.loads(row.source_row)["_position"], row.source_row
    malformed = q[q.reason == R.MALFORMED_ROW]
    assert all(json.loads(r)["_corrupt_record"] for r in malformed.source_row)
