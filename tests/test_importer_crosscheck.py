"""Independent readers of the same export files give the same boxes as our import (dev extras: pycocotools,
label-studio-converter, globox): a test reading back only our own writer would share our misunderstandings."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from exports import NAMES, read_labels, same_labels

pytestmark = pytest.mark.slow


def normalised(rows, names: list[str]) -> list[tuple]:
    """(label, x1, y1, x2, y2, width, height) -> sorted (class id, cx, cy, w, h)."""
    return sorted((names.index(c), (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h)
                  for c, x1, y1, x2, y2, w, h in rows)


def test_pycocotools_reads_the_same_coco_boxes(clean_exports):
    from pycocotools.coco import COCO

    built = clean_exports["coco"]
    coco = COCO(built["export"])
    names = [c["name"] for c in coco.loadCats(sorted(coco.getCatIds()))]  # the documented order: by category id
    assert names == NAMES["coco"]
    theirs = {}
    for image in coco.loadImgs(coco.getImgIds()):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]], iscrowd=False))
        rows = [(coco.loadCats(a["category_id"])[0]["name"], a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                 a["bbox"][1] + a["bbox"][3], image["width"], image["height"]) for a in anns]
        theirs[os.path.splitext(image["file_name"])[0]] = normalised(rows, names)
    assert same_labels(read_labels(built["out"]), theirs)


def globox_labels(annotations, names: list[str]) -> dict:
    return {os.path.splitext(a.image_id)[0]: normalised(
        [(b.label, *b.ltrb, a.image_width, a.image_height) for b in a.boxes], names) for a in annotations}


@pytest.mark.parametrize("fmt", ["voc", "cvat", "coco"])
def test_globox_reads_the_same_boxes(clean_exports, fmt):
    from globox import AnnotationSet

    built = clean_exports[fmt]
    read = {"voc": AnnotationSet.from_pascal_voc, "cvat": AnnotationSet.from_cvat, "coco": AnnotationSet.from_coco}
    theirs = globox_labels(read[fmt](built["export"]), NAMES[fmt])
    assert same_labels(read_labels(built["out"]), theirs), (read_labels(built["out"]), theirs)


LS_CONFIG = """<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">
<Label value="car"/><Label value="person"/><Label value="bike"/></RectangleLabels></View>"""


def test_label_studio_converter_writes_the_same_labels(clean_exports, tmp_path):
    from label_studio_converter import Converter

    built = clean_exports["labelstudio"]
    Converter(config=LS_CONFIG, project_dir=None, download_resources=False).convert_to_yolo(
        input_data=built["export"], output_dir=str(tmp_path), is_dir=False)
    names = (tmp_path / "classes.txt").read_text().split()
    assert names == NAMES["labelstudio"]
    theirs = {}
    for path in Path(tmp_path, "labels").glob("*.txt"):
        rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
        theirs[path.stem] = sorted((int(r[0]), *map(float, r[1:])) for r in rows)
    assert same_labels(read_labels(built["out"]), theirs), (read_labels(built["out"]), theirs)
