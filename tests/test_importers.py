"""Labeling-tool exports in, YOLO datasets out: per format the known boxes come back (<= 1e-6), the class names
are the export's own in the documented order, and the real YOLOv5 loader accepts every split.

The policies that need no Spark (pixel conventions, rotations, image references) are checked on the parsers.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from exports import BACKGROUND, BOXES, FORMATS, IMAGES, NAMES, expected_labels, read_labels, same_labels, voc_xml
from yololake.dataset import reasons as R
from yololake.importers.common import frame_id
from yololake.importers.cvat import parse_cvat
from yololake.importers.labelstudio import image_path, result_rows
from yololake.importers.voc import parse_voc

N_BOXES = sum(len(b) for b in BOXES.values())


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_known_boxes_come_back(clean_exports, fmt):
    built = clean_exports[fmt]
    summary, version = built["summary"], built["out"]
    with open(os.path.join(version, "dataset.yaml")) as f:
        assert yaml.safe_load(f)["names"] == NAMES[fmt]
    got = read_labels(version)
    assert same_labels(got, expected_labels(NAMES[fmt])), (got, expected_labels(NAMES[fmt]))
    assert got[os.path.splitext(BACKGROUND)[0]] == []
    assert summary["rows_in"] == summary["boxes_written"] == N_BOXES and summary["quarantined"] == 0
    assert summary["frames_by_status"] == {"background": 1, "labeled": len(IMAGES) - 1}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_real_yolov5_loader_accepts_the_dataset(clean_exports, yolov5_offline, fmt):
    dataloaders, general = yolov5_offline
    version, summary = clean_exports[fmt]["out"], clean_exports[fmt]["summary"]
    data = general.check_dataset(os.path.join(version, "dataset.yaml"), autodownload=False)
    assert data["nc"] == 3 and list(data["names"].values()) == NAMES[fmt]
    boxes = 0
    for split, expected in summary["by_split"].items():
        dataset = dataloaders.LoadImagesAndLabels(data[split], img_size=64, batch_size=2, stride=32, workers=0)
        cache = np.load(os.path.join(version, f"{split}.cache"), allow_pickle=True).item()
        found, missing, empty, corrupt, total = cache["results"]
        assert cache["msgs"] == [] and (found, missing, empty, corrupt) == (expected["frames"], 0,
                                                                             expected["background"], 0)
        boxes += sum(len(labels) for labels in dataset.labels)
    assert boxes == N_BOXES


def test_voc_pixel_conventions_and_difficult():
    xml = voc_xml("x.jpg", (64, 48), [("car", 4, 6, 30, 40), ("person", 1, 1, 64, 48)], difficult={1}).encode()
    labelimg = [r for r in parse_voc("f.xml", xml) if r["kind"] == "box"]
    one_based = [r for r in parse_voc("f.xml", xml, one_based=True, quarantine_difficult=True) if r["kind"] == "box"]
    assert [(r["xmin"], r["ymin"], r["xmax"], r["ymax"]) for r in labelimg] == [(4, 6, 30, 40), (1, 1, 64, 48)]
    assert [(r["xmin"], r["ymin"], r["xmax"], r["ymax"]) for r in one_based] == [(3, 5, 30, 40), (0, 0, 64, 48)]
    assert [r["_import_reason"] for r in labelimg] == [None, None]
    assert [r["_import_reason"] for r in one_based] == [None, R.DIFFICULT]
    frame = next(r for r in parse_voc("f.xml", xml) if r["kind"] == "frame")
    assert (frame["frame"], frame["image"], frame["width"], frame["height"]) == ("x.jpg", "x.jpg", 64, 48)
    [bad] = parse_voc("broken.xml", b"<annotation><object>")
    assert bad["_corrupt_record"].startswith("not a VOC XML file") and bad["_source_file"] == "broken.xml"


def test_cvat_rotation_policies():
    xml = (b'<annotations><image id="0" name="sub/x.jpg" width="100" height="100">'
           b'<box label="car" xtl="40" ytl="45" xbr="60" ybr="55" rotation="90.0"/></image></annotations>')
    [_, quarantined] = parse_cvat("a.xml", xml)
    assert quarantined["_import_reason"] == R.ROTATED_BOX and quarantined["frame"] == "x.jpg"
    [_, turned] = parse_cvat("a.xml", xml, "bounding_box")
    got = (turned["xmin"], turned["ymin"], turned["xmax"], turned["ymax"])
    assert turned["_import_reason"] is None and all(math.isclose(a, b) for a, b in zip(got, (45, 40, 55, 60)))


def test_labelstudio_policies():
    sized = {"original_width": 200, "original_height": 100, "type": "rectanglelabels"}
    turned = {**sized, "value": {"x": 10, "y": 20, "width": 10, "height": 20, "rotation": 90,
                                 "rectanglelabels": ["car"]}}
    [q] = result_rows(turned, "f", "p", "u", "quarantine")
    [b] = result_rows(turned, "f", "p", "u", "bounding_box")
    assert q["_import_reason"] == R.ROTATED_BOX
    # top-left (20, 20), 20 x 20 px turned 90 degrees clockwise about its top-left corner: x from 0 to 20
    assert all(math.isclose(a, e, abs_tol=1e-9) for a, e in zip((b["xmin"], b["ymin"], b["xmax"], b["ymax"]),
                                                                (0, 20, 20, 40)))
    negative = {**sized, "value": {"x": 30, "y": 40, "width": -10, "height": -20, "rectanglelabels": ["car"]}}
    [n] = result_rows(negative, "f", "p", "u", "quarantine")
    assert (n["xmin"], n["ymin"], n["xmax"], n["ymax"]) == (60, 40, 40, 20)  # corners reordered by the job
    [m] = result_rows({"value": turned["value"]}, "f", "p", "u", "quarantine")
    assert m["_import_reason"] == R.MISSING_IMAGE_SIZE


def test_labelstudio_image_references():
    assert image_path("/data/upload/3/1a2b3c4d-cat.jpg") == "3/1a2b3c4d-cat.jpg"
    assert image_path("/data/local-files/?d=dataset/one%20two/x.jpg") == "dataset/one two/x.jpg"
    assert image_path("s3://bucket/frames/x.jpg") == "s3://bucket/frames/x.jpg"
    assert frame_id("3/1a2b3c4d-cat.jpg") == "1a2b3c4d-cat.jpg"
    assert frame_id("s3://bucket/frames/x%201.jpg?versionId=2") == "x 1.jpg"


def test_every_import_format_is_a_config_choice():
    from yololake.build.config import AnnotationsConfig
    from yololake.config import choices
    from yololake.importers.formats import IMPORT_FORMATS

    assert set(IMPORT_FORMATS) <= set(choices(AnnotationsConfig, "format"))
    assert {p.stem for p in (Path(__file__).resolve().parents[1] / "conf").glob("*.yaml")} >= set(IMPORT_FORMATS)


def test_class_names_come_from_the_export_only_when_omitted():
    from yololake.build.config import parse_config
    from yololake.errors import InputError
    from yololake.importers.read import with_export_classes
    from yololake.tables import InputTable

    base = {"annotations": {"format": "coco"}, "split": {"column": "frame"}}
    exported = InputTable(None, names=("car", "person", "bike"))
    assert with_export_classes(parse_config(base), exported).classes.names == ("car", "person", "bike")
    given = parse_config({**base, "classes": {"names": ["person", "car"], "map": {"bike": "car", "car": "car",
                                                                                  "person": "person"}}})
    assert with_export_classes(given, exported) is given
    assert given.classes.source_to_id() == {"bike": 1, "car": 1, "person": 0}  # by name, never the tool's id
    with pytest.raises(InputError, match="names no class"):
        with_export_classes(parse_config(base), InputTable(None))


def test_frames_only_with_a_cvat_video_export():
    from yololake.build.config import check_run, parse_config
    from yololake.errors import ConfigError

    coco = parse_config({"annotations": {"format": "coco"}, "split": {"column": "frame"}})
    with pytest.raises(ConfigError, match="^annotations.format: coco exports list their own images and sizes"):
        check_run(coco, "/tmp/out", ["manifest.parquet"])
    check_run(coco, "/tmp/out", [])   # and no image_size is needed: the export gives the sizes
    check_run(parse_config({"annotations": {"format": "cvat"}, "split": {"column": "frame_id"}}), "/tmp/out",
              ["manifest.parquet"])
