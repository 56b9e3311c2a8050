"""Label Studio JSON exports (a list of tasks): streamed by the driver (ijson) into staged parquet chunks.

Schema (labelstud.io "Export annotations", JSON): each task has `data` (the image reference under the
labeling config's key: annotations.attribute, default `image`, else the task's first text value) and
`annotations` (one per annotator; like label-studio-converter we take the newest one not skipped or cancelled),
each with `result`: `rectanglelabels` results with `value.x, y, width, height` in percent of the result's
`original_width` / `original_height`, `value.rotation` (degrees clockwise about the top-left corner) and
`value.rectanglelabels` (one row per label). Image references, all three forms:
- uploaded `/data/upload/<project>/<8 hex>-<name>`: `<project>/<8 hex>-<name>` under --images (Label Studio's
  media/upload folder);
- local storage `/data/local-files/?d=<path>`: `<path>` under --images (LOCAL_FILES_DOCUMENT_ROOT);
- cloud `s3://...` (or any URL): as it is.
The frame id is the file name (as label-studio-converter names its label files). Policies: a negative width
or height spans the box the other way (as the corners of a table are reordered); rotation != 0 is rotated_box
or, with annotations.rotated bounding_box, the axis-aligned box around it; a result without original_width or
original_height is missing_image_size; a task or result that is not an object is malformed_row. A task
without boxes carries no size: its image gives it (images.check_exists).
"""
from __future__ import annotations

import urllib.parse

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from yololake.dataset import reasons as R
from yololake.importers.common import (
    ANN_FIELDS,
    ANN_SCHEMA,
    FRAME_FIELDS,
    Imported,
    JsonSyntaxError,
    ann_row,
    bounding_box,
    frame_id,
    frame_row,
    number,
    record_text,
    rotated_corners,
    stream_export,
    stream_items,
)

UPLOAD, LOCAL = "/data/upload/", "/data/local-files/"


def image_path(reference: str | None) -> str | None:
    """An image reference of a task as a path under --images, or a URL."""
    if not isinstance(reference, str):
        return None
    if reference.startswith(UPLOAD):
        return reference[len(UPLOAD):]
    if reference.startswith(LOCAL):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(reference).query)
        return query.get("d", [None])[0]
    return reference


def chosen_annotation(task: dict) -> dict | None:
    """The newest annotation not skipped or cancelled (label-studio-converter's choice)."""
    kept = [a for a in task.get("annotations") or task.get("completions") or []
            if isinstance(a, dict) and not (a.get("skipped") or a.get("was_cancelled"))]
    return sorted(kept, key=lambda a: str(a.get("created_at", "")), reverse=True)[0] if kept else None


def result_rows(result: object, frame: str | None, position: str, uri: str, rotated: str) -> list[dict]:
    value = result.get("value") if isinstance(result, dict) else None
    if not isinstance(value, dict):
        return [ann_row(frame, position=position, corrupt=f"not a result: {record_text(result)}", source=uri)]
    labels = value.get("rectanglelabels")
    if result.get("type") not in (None, "rectanglelabels", "rectangle"):
        return []  # another kind of result (choices, polygons, text): not a box
    width, height = number(result.get("original_width")), number(result.get("original_height"))
    x, y, w, h = (number(value.get(k)) for k in ("x", "y", "width", "height"))
    reason, angle = None, number(value.get("rotation")) or 0.0
    if not width or not height:
        box, reason = (x, y, w, h), R.MISSING_IMAGE_SIZE
    elif None in (x, y, w, h):
        box = (x, y, w, h)
    else:
        x1, y1, x2, y2 = x * width / 100, y * height / 100, (x + w) * width / 100, (y + h) * height / 100
        box = (x1, y1, x2, y2)
        if angle % 360 and rotated == "quarantine":
            reason = R.ROTATED_BOX
        elif angle % 360:
            box = bounding_box(rotated_corners(x1, y1, x2, y2, angle, (x1, y1)))
    return [ann_row(frame, label, box, reason, position, None, uri) for label in (labels or [None])]


def task_rows(task: object, index: int, uri: str, data_key: str, rotated: str) -> list[dict]:
    """One task's frame row (kind frame) and box rows."""
    position = f"tasks[{index}]"
    if isinstance(task, JsonSyntaxError) or not isinstance(task, dict) or not isinstance(task.get("data"), dict):
        problem = task if isinstance(task, JsonSyntaxError) else f"not a task: {record_text(task)}"
        return [ann_row(position=position, corrupt=problem, source=uri)]
    data = task["data"]
    ref = data.get(data_key) if data_key else data.get("image")
    if ref is None and not data_key:
        ref = next((v for v in data.values() if isinstance(v, str)), None)
    image = image_path(ref)
    frame = frame_id(image)
    annotation = chosen_annotation(task)
    results = annotation.get("result") if annotation else []
    if not isinstance(results, list):
        return [ann_row(frame, position=position, corrupt=f"result is not a list: {record_text(results)}",
                        source=uri)]
    sized = next((r for r in results if isinstance(r, dict) and r.get("original_width")), {})
    return [{"kind": "frame", **frame_row(frame, image, sized.get("original_width"), sized.get("original_height"))},
            *(row for j, r in enumerate(results)
            for row in result_rows(r, frame, f"{position}.result[{j}]", uri, rotated))]


def _rows(files: list[str], config):
    storage, ann = config.storage, config.annotations
    for uri in files:
        for i, task in stream_items(uri, "item", storage):
            yield from task_rows(task, i, uri, ann.attribute, ann.rotated)


def read_labelstudio(spark: SparkSession, paths, config) -> Imported:
    rows = stream_export(spark, config, paths, "tasks", lambda files: _rows(files, config),
                         f"kind string, {ANN_SCHEMA}, image string, width int, height int")
    frames = rows.where(F.col("kind") == "frame").select(*FRAME_FIELDS)
    boxes = rows.where(F.col("kind").isNull()).select(*ANN_FIELDS)
    return Imported(boxes, frames, None, sizes_from_images=config.images.check_exists)
