"""The build-dataset plan: read the inputs, then pure transforms up to "frames to write" and "quarantine".

Nothing here writes; `build.main` runs the plan and writes. Every step is a Spark expression except
the image check (`image_facts`: each image's header read where it lives, per partition).
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from yololake.build.config import JobConfig
from yololake.build.image_facts import add_image_facts, no_image_facts
from yololake.build.transforms.annotations import (
    assign_reason,
    label_line,
    map_classes,
    standardize_annotations,
    to_yolo_boxes,
)
from yololake.build.transforms.frames import (
    apply_image_facts,
    assign_split_by_hash,
    assign_split_from_values,
    check_frames,
    frame_hints_from_annotations,
    frame_status,
    frames_from_annotations,
    frames_from_manifest,
    is_safe_frame_id,
)
from yololake.dataset import reasons as R
from yololake.dataset.layout import WRITTEN_STATUSES
from yololake.errors import InputError
from yololake.importers.read import IMPORT_FORMATS, import_tables, with_export_classes
from yololake.input_files import Unreadable
from yololake.storage import local_path
from yololake.tables import SOURCE_FILE, InputTable, check_paths_exist, read_input_table


@dataclass(frozen=True)
class JobInputs:
    annotations: tuple[str, ...]
    frames: tuple[str, ...] = ()
    images: str | None = None


@dataclass
class Plan:
    annotations: DataFrame
    """Every annotation row: frame_id, split, line (valid rows), reason (null = valid); rejected rows also
    class_raw, source_file and source_row (JSON)."""
    frames: DataFrame
    """Every frame: key, ext, image_uri, width, height (displayed), split, box_count, labels, annotated, status,
    the image facts (image_format, stored_width, stored_height, orientation, image_bytes), and its valid
    annotation rows before duplicates were dropped (valid_rows) and how many of them were clipped (clipped_rows):
    the counts the job reconciles, so no second pass over the annotation rows is needed."""
    cached: tuple[DataFrame, ...] = ()
    """What building the plan persisted, released by `release`."""
    unreadable: tuple[Unreadable, ...] = ()
    """Annotation files left out (on_unreadable_file: quarantine); each is one unreadable_file row too."""
    sources: tuple[str, ...] = ()
    """The annotation paths read, for messages."""
    config: JobConfig | None = None
    """The config the plan was built with, classes.names resolved (from a labeling tool's export when omitted)."""

    def release(self) -> None:
        for df in self.cached:
            df.unpersist()

    def top_values(self, reason: str, column: str, n: int = 5) -> list[tuple]:
        """The `n` most common values of `column` among the rows quarantined as `reason`, with their counts."""
        rows = (self.annotations.where(F.col("reason") == reason).groupBy(column).count()
                .orderBy(F.desc("count"), column).limit(n).collect())
        return [(r[column], r["count"]) for r in rows]

    def quarantine(self) -> DataFrame:
        return self.annotations.where(F.col("reason").isNotNull()).select(
            "reason", "frame_id", "class_raw", "source_file", "source_row")

    def frames_to_write(self) -> DataFrame:
        return self.frames.where(F.col("status").isin(*WRITTEN_STATUSES))


def annotation_paths(paths: tuple[str, ...], config: JobConfig) -> list[str]:
    """With split mode source_file, a folder stands for the configured files in it (and nothing else:
    Udacity's labels_trainval.csv is the union of the others and must not be read twice)."""
    if config.split.mode != "source_file":
        return list(paths)
    expanded = []
    for uri in paths:
        local = local_path(uri)
        is_dir = os.path.isdir(local) if local is not None else not os.path.basename(uri.rstrip("/")) in config.split.files
        if not is_dir:
            expanded.append(uri)
            continue
        for name in config.split.files:
            path = f"{uri.rstrip('/')}/{name}"
            if local is not None and not os.path.exists(os.path.join(local, name)):
                raise InputError(f"--annotations folder {uri} has no {name}, named in split.files; "
                                 "fix the folder or split.files")
            expanded.append(path)
    return expanded


def images_root(inputs: JobInputs) -> str:
    """Base for relative image paths: --images, else the working directory (made absolute for links)."""
    root = inputs.images or os.getcwd()
    local = local_path(root)
    return os.path.abspath(local) if local is not None else root


def read_images(frames: DataFrame, config: JobConfig, sizes_given: bool) -> DataFrame:
    """Each frame's image read where it lives: its facts, displayed size and reason (null facts when
    images.check_exists is false)."""
    images = config.images
    if not images.check_exists:
        return no_image_facts(frames).drop("image_reason")
    return apply_image_facts(add_image_facts(frames, config.storage, images.decode), sizes_given,
                             images.size_mismatch)


def read_inputs(spark: SparkSession, config: JobConfig,
                inputs: JobInputs) -> tuple[list[str], InputTable, DataFrame | None]:
    """The annotation paths read, the annotation table and the frame manifest (None without --frames)."""
    ann_cfg, scheme = config.annotations, config.storage.spark_s3_scheme
    paths = annotation_paths(inputs.annotations, config)
    check_paths_exist(paths, "annotations")
    check_paths_exist(inputs.frames, "frames")
    if ann_cfg.format in IMPORT_FORMATS:  # a labeling tool's export: its boxes and its own frame table
        table, frames = import_tables(spark, config, paths, inputs.frames)
        return paths, table, frames
    table = read_input_table(spark, paths, ann_cfg, scheme, "annotations",
                             (ann_cfg.frame_column, ann_cfg.class_column, *ann_cfg.box_columns),
                             ann_cfg.on_unreadable_file)
    manifest = read_input_table(spark, inputs.frames, config.frames, scheme, "frames").df if inputs.frames else None
    return paths, table, manifest


def build_plan(spark: SparkSession, config: JobConfig, inputs: JobInputs) -> Plan:
    ann_cfg, split = config.annotations, config.split
    paths, table, manifest = read_inputs(spark, config, inputs)
    raw, root = table.df, images_root(inputs)
    config = with_export_classes(config, table)

    hint_in_manifest = manifest is not None and split.mode != "source_file" and split.column in manifest.columns
    extra = [split.column] if split.mode != "source_file" and not hint_in_manifest else []
    if extra and split.column not in raw.columns:
        where = "annotations or frame manifest" if manifest is not None else "annotations"
        raise InputError(f"split.column {split.column!r} is not a column of the {where}; "
                         f"annotation columns: {', '.join(c for c in raw.columns if c != SOURCE_FILE)}")
    ann = standardize_annotations(raw, ann_cfg.frame_column, ann_cfg.class_column, ann_cfg.box_columns, extra)
    ann = map_classes(ann, config.classes.source_to_id())
    parsed = ann.where(~F.col("malformed"))  # a row the reader could not parse names no frame and no split

    if manifest is not None:
        fc = config.frames
        frames = frames_from_manifest(manifest, fc.frame_column, fc.image_column, fc.width_column,
                                      fc.height_column, root, split.column if hint_in_manifest else None)
        frames = frames.withColumn("hints", F.when(F.col("hint").isNotNull(), F.array("hint")))
    else:  # without image_size the sizes come from the images (build.config.check_run makes sure they are read)
        size = config.image_size
        frames = frames_from_annotations(parsed, root, config.images.extension, size.width or None,
                                         size.height or None)
    sizes_given = (manifest is not None and not table.sizes_from_images) or config.image_size.given
    if not hint_in_manifest:
        value = (F.regexp_extract(F.col(SOURCE_FILE), r"([^/]+)$", 1) if split.mode == "source_file"
                 else F.col(f"_x_{split.column}").cast("string"))
        hints = frame_hints_from_annotations(parsed, value)
        frames = (frames.drop("hints").join(hints, on="frame_id", how="left")
                  .withColumn("hint", F.col("hints")[0]))

    frames = check_frames(frames, sizes_given)
    frames = (assign_split_by_hash(frames, split.ratios, split.seed) if split.mode == "hash"
              else assign_split_from_values(frames, split.values if split.mode == "column" else split.files))
    frames = read_images(frames.drop("hint", "hints"), config, sizes_given).persist()

    boxes = ann.join(frames.select("frame_id", "key", "width", "height", "split", "frame_reason"),
                     on="frame_id", how="left")
    # A manifest frame already carries its id checks; only ids missing from it are checked here, once per row.
    missing = F.when(~is_safe_frame_id(F.col("frame_id")), F.lit(R.UNSAFE_FRAME_ID)).otherwise(
        F.lit(R.FRAME_NOT_IN_MANIFEST))
    boxes = boxes.withColumn("frame_reason", F.when(F.col("key").isNull(), missing).otherwise(F.col("frame_reason")))
    boxes = label_line(assign_reason(to_yolo_boxes(boxes, ann_cfg.box_format, ann_cfg.box_margin)))
    # Cache only what later steps read: a valid box is its line; a rejected row keeps its source row as JSON.
    rejected = F.col("reason").isNotNull()
    boxes = boxes.select("frame_id", "split", "line", "reason", F.when(rejected, F.col("class_raw")).alias("class_raw"),
                         F.when(rejected, F.col(SOURCE_FILE)).alias("source_file"),
                         F.when(rejected, F.to_json("source_row")).alias("source_row"),
                         F.when(~rejected, F.col("clipped")).alias("clipped"))
    boxes = boxes.unionByName(unreadable_rows(spark, table.unreadable, boxes.schema)).persist()

    # One aggregation per frame over every annotation row: the frame's distinct valid lines (exact duplicate
    # boxes dropped; collect_list skips the null line of a rejected row), whether it had any row at all, and
    # its valid and clipped row counts (so the counts reconcile from this table, not from another pass).
    per_frame = boxes.groupBy("frame_id").agg(F.array_sort(F.array_distinct(F.collect_list("line"))).alias("lines"),
                                              F.count("line").alias("valid_rows"),
                                              F.count(F.when(F.col("clipped"), 1)).alias("clipped_rows"))
    full = (frames.join(per_frame, on="frame_id", how="left")
            .select("*", F.col("lines").isNotNull().alias("annotated"),
                    F.coalesce(F.size("lines"), F.lit(0)).alias("box_count"),
                    F.coalesce(F.concat_ws("\n", "lines"), F.lit("")).alias("labels"))
            .fillna(0, ["valid_rows", "clipped_rows"])
            .drop("lines"))
    frame_table = frame_status(full, config.background.policy, config.background.fraction, split.seed).persist()
    return Plan(annotations=boxes, frames=frame_table, cached=(frames, boxes, frame_table, *table.cached),
                unreadable=table.unreadable, sources=tuple(paths), config=config)


def unreadable_rows(spark: SparkSession, unreadable: Sequence[Unreadable], schema: StructType) -> DataFrame:
    """One quarantine row per unreadable file: reason unreadable_file, its path, and the problem as JSON."""
    rows = [{"reason": R.UNREADABLE_FILE, "source_file": u.path, "source_row": json.dumps({"problem": u.problem})}
            for u in unreadable]
    return spark.createDataFrame([tuple(r.get(f.name) for f in schema.fields) for r in rows], schema)
