"""LabelImg / Pascal VOC XML: a folder (or prefix) of one XML file per image, read and parsed in Spark tasks.

Schema (LabelImg's `pascal_voc_io.py`, the VOC devkit): `<annotation>` with `filename`, `size/width`,
`size/height`, and per object `name`, `difficult`, `truncated`, `bndbox/xmin ymin xmax ymax` (integers).
The image is `filename` (relative to --images); LabelImg's `path` is the labeler's own absolute path and is
ignored. Pixel convention (annotations.voc_pixels): `labelimg` takes the corners as written, which is what
LabelImg's own YOLO export computes from the same XML; `one_based` reads Pascal VOC's 1-based inclusive pixels
(xmin - 1 .. xmax). `difficult` boxes are kept (LabelImg's YOLO export writes them) unless
annotations.difficult is quarantine. A file that is not well-formed XML is one malformed_row.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

from pyspark.sql import functions as F

from yololake.dataset import reasons as R
from yololake.importers.common import (
    ANN_FIELDS,
    ANN_SCHEMA,
    BOX,
    FRAME_FIELDS,
    Imported,
    ann_row,
    files_in_tasks,
    frame_id,
    frame_row,
    number,
    parse_xml,
)

ROW_FIELDS = ("kind", *ANN_FIELDS, "image", "width", "height")
ROW_SCHEMA = f"kind string, {ANN_SCHEMA}, image string, width int, height int"


def _text(node: ET.Element | None, path: str) -> str | None:
    found = node.find(path) if node is not None else None
    return found.text.strip() if found is not None and found.text is not None else None


def parse_voc(path: str, content: bytes, one_based: bool = False, quarantine_difficult: bool = False) -> Iterator[dict]:
    """One VOC XML file -> a frame row and one box row per object (or one malformed row)."""
    root, bad = parse_xml(path, content, "annotation", "VOC")
    if bad:
        yield bad
        return
    name = _text(root, "filename")
    frame = frame_id(name)
    yield {"kind": "frame", **frame_row(frame, name, _text(root, "size/width"), _text(root, "size/height"))}
    for i, obj in enumerate(root.iter("object")):
        box = obj.find("bndbox")
        corners = [number(_text(box, c)) for c in BOX]
        if one_based and None not in corners:
            corners = [corners[0] - 1, corners[1] - 1, corners[2], corners[3]]
        difficult = quarantine_difficult and _text(obj, "difficult") in ("1", "true")
        yield {"kind": "box", **ann_row(frame, _text(obj, "name"), corners, R.DIFFICULT if difficult else None,
                                        f"object {i}", None if box is not None else "object without <bndbox>",
                                        path)}


def read_voc(spark, paths, config) -> Imported:
    ann = config.annotations
    one_based, difficult = ann.voc_pixels == "one_based", ann.difficult == "quarantine"
    rows = files_in_tasks(spark, list(paths), config.storage.spark_s3_scheme, "*.xml",
                          lambda path, content: parse_voc(path, content, one_based, difficult),
                          ROW_FIELDS, ROW_SCHEMA).persist()
    boxes = rows.where(F.col("kind") == "box").select(*ANN_FIELDS)
    frames = rows.where(F.col("kind") == "frame").select(*FRAME_FIELDS)
    return Imported(boxes, frames, None, cached=(rows,))
