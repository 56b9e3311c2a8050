"""CVAT XML 1.1 exports, each file parsed in a Spark task: "CVAT for images" and "CVAT for video".

- for images: `<image id name width height>` holding `<box label xtl ytl xbr ybr occluded rotation>`; the
  image is `name` (relative to --images). Boxes beyond the image are clipped by the job, as any box.
- for video: `<track id label>` holding one `<box frame xtl ytl xbr ybr outside keyframe>` per frame, in pixels
  of `meta/task/original_size`. The video is `meta/task/source` (or `meta/source`); track boxes are joined to
  the extract-frames manifest (--frames: frame_id, video_id, frame_index, image, width, height) by video id (the
  source's file name or its stem, as extract-frames names a video file) and frame number; boxes on frames the
  manifest does not hold, and boxes marked outside (the object left the view), are no annotation rows.
  Boxes are scaled from the original size to the manifest frame's size.
Class names (classes.names omitted): `meta//labels/label/name`, in the export's order.
`rotation` != 0 (degrees clockwise about the box centre): rotated_box, or with annotations.rotated
bounding_box the axis-aligned box around it.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from yololake.dataset import reasons as R
from yololake.errors import InputError
from yololake.importers.common import (
    ANN_FIELDS,
    ANN_SCHEMA,
    FRAME_FIELDS,
    Imported,
    ann_row,
    bounding_box,
    files_in_tasks,
    frame_id,
    frame_row,
    number,
    parse_xml,
    rotated_corners,
)
from yololake.input_files import CORRUPT_RECORD
from yololake.tables import SOURCE_FILE, read_table

ROW_FIELDS = ("kind", *ANN_FIELDS, "image", "width", "height", "video", "frame_index")
ROW_SCHEMA = f"kind string, {ANN_SCHEMA}, image string, width int, height int, video string, frame_index long"


def cvat_box(node: ET.Element, rotated: str) -> tuple[list, str | None]:
    """A <box>'s corners (pixels) and its reason (rotated_box), rotation applied as the policy says."""
    corners = [number(node.get(a)) for a in ("xtl", "ytl", "xbr", "ybr")]
    angle = number(node.get("rotation")) or 0.0
    if angle % 360 == 0 or None in corners:
        return corners, None
    if rotated == "quarantine":
        return corners, R.ROTATED_BOX
    x1, y1, x2, y2 = corners
    return list(bounding_box(rotated_corners(x1, y1, x2, y2, angle, ((x1 + x2) / 2, (y1 + y2) / 2)))), None


def _first(root: ET.Element, name: str) -> ET.Element | None:
    return next((n for n in (root.find(f"meta/{where}{name}") for where in ("task/", "", "job/")) if n is not None),
                None)


def _video_meta(root: ET.Element) -> tuple[str | None, int | None, int | None]:
    node, size = _first(root, "source"), _first(root, "original_size")
    source = node.text if node is not None else None
    width, height = (number(size.findtext(k)) if size is not None else None for k in ("width", "height"))
    return (source.strip() if source else None, int(width) if width else None, int(height) if height else None)


def parse_cvat(path: str, content: bytes, rotated: str = "quarantine") -> Iterator[dict]:
    """One CVAT XML file -> label, frame, box (images) and track (video) rows, or one malformed row."""
    root, bad = parse_xml(path, content, "annotations", "CVAT")
    if bad:
        yield bad
        return
    for i, label in enumerate(root.iterfind("meta//labels/label")):
        yield {"kind": "label", **ann_row(cls=(label.findtext("name") or "").strip(), position=f"{i:06d}",
                                          source=path)}
    for image in root.iterfind("image"):
        name = image.get("name")
        frame = frame_id(name)
        yield {"kind": "frame", **frame_row(frame, name, image.get("width"), image.get("height"))}
        for j, node in enumerate(image.iterfind("box")):
            corners, reason = cvat_box(node, rotated)
            yield {"kind": "box", **ann_row(frame, node.get("label"), corners, reason,
                                            f"image {image.get('id')} box {j}", None, path)}
    video, width, height = _video_meta(root)
    for track in root.iterfind("track"):
        for node in track.iterfind("box"):
            if node.get("outside") == "1":
                continue
            corners, reason = cvat_box(node, rotated)
            yield {"kind": "track", **ann_row(None, track.get("label"), corners, reason,
                                              f"track {track.get('id')} frame {node.get('frame')}", None, path),
                   "video": video, "width": width, "height": height, "frame_index": number(node.get("frame"))}


def read_cvat(spark: SparkSession, paths, config, manifest_paths=()) -> Imported:
    rotated = config.annotations.rotated
    rows = files_in_tasks(spark, list(paths), config.storage.spark_s3_scheme, "*.xml",
                          lambda path, content: parse_cvat(path, content, rotated), ROW_FIELDS, ROW_SCHEMA).persist()
    labels = rows.where(F.col("kind") == "label").select("class", "_position", SOURCE_FILE).collect()  # a few
    names = tuple(dict.fromkeys(r["class"] for r in sorted(labels, key=lambda r: (r[SOURCE_FILE], r["_position"]))))
    boxes = rows.where(F.col("kind") == "box").select(*ANN_FIELDS)
    frames = rows.where(F.col("kind") == "frame").select(*FRAME_FIELDS)
    tracks = rows.where(F.col("kind") == "track")
    if manifest_paths:
        track_boxes, video_frames = join_tracks(spark, tracks, manifest_paths, config)
        boxes, frames = boxes.unionByName(track_boxes), frames.unionByName(video_frames)
    elif tracks.limit(1).count():
        raise InputError("the CVAT export holds video tracks (CVAT for video 1.1): pass the extract-frames "
                         "manifest of that video with --frames, so each track box finds its frame")
    return Imported(boxes, frames, names or None, cached=(rows,))


def join_tracks(spark: SparkSession, tracks: DataFrame, manifest_paths, config) -> tuple[DataFrame, DataFrame]:
    """Track boxes on the manifest's frames (by video id and frame number, scaled to the frame's size), and
    every manifest frame of the exported videos (a frame without a box is a background frame)."""
    fc = config.frames
    manifest = read_table(spark, list(manifest_paths), fc, config.storage.spark_s3_scheme, "frames")
    missing = [c for c in (fc.frame_column, "video_id", "frame_index", fc.image_column, fc.width_column,
                           fc.height_column) if c not in manifest.columns]
    if missing:
        raise InputError(f"--frames manifest has no column {missing[0]!r}: a CVAT video export is joined to an "
                         "extract-frames manifest (frame_id, video_id, frame_index, image, width, height)")
    videos = tracks.select("video").distinct().select(
        "video", F.regexp_replace("video", r"\.[^./]*$", "").alias("stem"))
    m = manifest.select(F.col(fc.frame_column).cast("string").alias("frame"), F.col("video_id").cast("string"),
                        F.col("frame_index").cast("long").alias("m_index"),
                        F.col(fc.image_column).cast("string").alias("image"),
                        F.col(fc.width_column).cast("int").alias("m_width"),
                        F.col(fc.height_column).cast("int").alias("m_height"))
    m = m.join(F.broadcast(videos), (m.video_id == videos.video) | (m.video_id == videos.stem), "inner").drop("stem")
    t = tracks.select("class", "xmin", "ymin", "xmax", "ymax", "_import_reason", "_position", CORRUPT_RECORD,
                      SOURCE_FILE, F.col("video").alias("t_video"), "frame_index", F.col("width").alias("t_width"),
                      F.col("height").alias("t_height"))
    joined = t.join(m, (t.t_video == m.video) & (t.frame_index == m.m_index), "inner")
    sx = F.coalesce(F.col("m_width") / F.col("t_width"), F.lit(1.0))
    sy = F.coalesce(F.col("m_height") / F.col("t_height"), F.lit(1.0))
    boxes = joined.select("frame", "class", (F.col("xmin") * sx).alias("xmin"), (F.col("ymin") * sy).alias("ymin"),
                          (F.col("xmax") * sx).alias("xmax"), (F.col("ymax") * sy).alias("ymax"),
                          "_import_reason", "_position", CORRUPT_RECORD, SOURCE_FILE)
    frames = m.select("frame", "image", F.col("m_width").alias("width"), F.col("m_height").alias("height"))
    return boxes, frames.dropDuplicates(["frame"])
