"""COCO detection exports (`instances.json`): streamed by the driver (ijson) into staged parquet chunks.

Schema (cocodataset.org "Data format"): `images` (id, file_name, width, height), `annotations` (id, image_id,
category_id, bbox [x, y, width, height] from the top-left, pixels, iscrowd), `categories` (id, name; ids are
often not contiguous). Class names come from the category *name* (classes.names omitted: the categories
sorted by id); a category id the file does not list is unknown_class. Images without annotations are
background frames; the image is `file_name` (relative to --images). Policies: iscrowd=1 is not written
(crowd_box); an annotation whose image_id is not in `images` is image_not_in_export; a record that is not a
detection (no 4-number bbox, not an object) is malformed_row with its position, and a JSON syntax error ends
the file there (one malformed_row; the items before it are kept).
"""
from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from yololake.dataset import reasons as R
from yololake.importers.common import (
    ANN_FIELDS,
    ANN_SCHEMA,
    FRAME_FIELDS,
    Imported,
    JsonSyntaxError,
    Staging,
    ann_row,
    frame_id,
    frame_row,
    number,
    record_text,
    stream_export,
    stream_items,
)
from yololake.input_files import CORRUPT_RECORD

IMAGE_SCHEMA = "_file string, image_id string, frame string, image string, width int, height int"


def _categories(uri: str, storage) -> dict:
    found = {}
    for _, item in stream_items(uri, "categories.item", storage):
        if isinstance(item, dict) and "id" in item:
            found[str(item["id"]).removesuffix(".0")] = str(item.get("name", item["id"]))
    return found


def _images(files: list[str], storage):
    for uri in files:
        for _, item in stream_items(uri, "images.item", storage):
            if isinstance(item, dict) and "id" in item:
                name = item.get("file_name")
                yield {"_file": uri, "image_id": str(item["id"]).removesuffix(".0"), "frame": frame_id(name),
                       **frame_row(frame_id(name), name, item.get("width"), item.get("height"))}


def _annotations(files: list[str], categories: dict, storage):
    for uri in files:
        for i, item in stream_items(uri, "annotations.item", storage):
            position = f"annotations[{i}]"
            bbox = item.get("bbox") if isinstance(item, dict) else None
            if isinstance(item, JsonSyntaxError) or not isinstance(bbox, list) or len(bbox) != 4:
                problem = item if isinstance(item, JsonSyntaxError) else f"not a detection: {record_text(item)}"
                yield {**ann_row(position=position, corrupt=problem, source=uri), "image_id": None, "_file": uri}
                continue
            cid = str(item.get("category_id")).removesuffix(".0")
            x, y, w, h = (number(v) for v in bbox)
            box = (x, y, x + w, y + h) if None not in (x, y, w, h) else (x, y, w, h)
            crowd = R.CROWD_BOX if item.get("iscrowd") in (1, True, "1") else None
            cls = categories[uri].get(cid, f"category_id={cid}")
            yield {**ann_row(None, cls, box, crowd, f"{position} (image_id {item.get('image_id')})", None, uri),
                   "image_id": str(item.get("image_id")).removesuffix(".0"), "_file": uri}


def read_coco(spark: SparkSession, paths, config) -> Imported:
    storage = config.storage
    staging = Staging(config.annotations.staging, storage)
    categories: dict = {}

    def annotations(files: list[str]):
        categories.update({uri: _categories(uri, storage) for uri in files})  # small: read first
        return _annotations(files, categories, storage)

    anns = stream_export(spark, config, paths, "annotations", annotations,
                         f"{ANN_SCHEMA}, image_id string, _file string", staging)
    images = stream_export(spark, config, paths, "images", lambda files: _images(files, storage), IMAGE_SCHEMA,
                           staging)
    ids = images.select("_file", "image_id", F.col("frame").alias("_frame"))
    joined = anns.drop("frame").join(ids, ["_file", "image_id"], "left")
    missing = F.col("_frame").isNull() & F.col(CORRUPT_RECORD).isNull()
    boxes = joined.select(F.col("_frame").alias("frame"), *[
        F.coalesce("_import_reason", F.when(missing, F.lit(R.IMAGE_NOT_IN_EXPORT))).alias(c)
        if c == "_import_reason" else F.col(c) for c in ANN_FIELDS[1:]])
    names = tuple(dict.fromkeys(name for cats in categories.values()
                                for _, name in sorted(cats.items(), key=lambda kv: _id_order(kv[0]))))
    return Imported(boxes, images.select(*FRAME_FIELDS), names)


def _id_order(cid: str) -> tuple:
    value = number(cid)
    return (0, value, cid) if value is not None and value == value else (1, 0.0, cid)
