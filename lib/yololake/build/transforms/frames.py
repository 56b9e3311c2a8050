"""The frame table: one row per image, its file key, size, split, checks, and the shard it is written to.

Pure DataFrame -> DataFrame transforms over Spark expressions.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from yololake.dataset import reasons as R
from yololake.dataset.layout import SPLITS, YOLO_IMAGE_FORMATS
from yololake.errors import InputError
from yololake.tables import resolve_uri

_IMAGE_EXT = r"(?i)\.(" + "|".join(YOLO_IMAGE_FORMATS) + r")$"
# A frame id becomes a file name: no separators, NUL or control characters, no leading dot
# ('.', '..', hidden files), no surrounding blanks, and short enough for any filesystem.
_SAFE_FRAME_ID = r"^[^/\\\x00-\x1F\x7F]{1,200}$"
_HASH_BUCKETS = 1_000_000


def frames_from_manifest(manifest: DataFrame, frame_column: str, image_column: str, width_column: str,
                         height_column: str, images_root: str, hint_column: str | None = None) -> DataFrame:
    """Manifest rows -> frame_id, image_uri, width, height (+ `hint` from `hint_column`)."""
    wanted = [frame_column, image_column, width_column, height_column] + ([hint_column] if hint_column else [])
    missing = [c for c in wanted if c not in manifest.columns]
    if missing:
        raise InputError(f"frame manifest column(s) {', '.join(missing)} not found; the manifest has: "
                       f"{', '.join(manifest.columns)}. Fix `frames:` in the config")
    return manifest.select(
        F.col(f"`{frame_column}`").cast("string").alias("frame_id"),
        resolve_uri(F.col(f"`{image_column}`").cast("string"), images_root).alias("image_uri"),
        F.col(f"`{width_column}`").cast("string").try_cast("int").alias("width"),
        F.col(f"`{height_column}`").cast("string").try_cast("int").alias("height"),
        (F.col(f"`{hint_column}`").cast("string") if hint_column else F.lit(None).cast("string")).alias("hint"),
    ).dropDuplicates()


def frames_from_annotations(annotations: DataFrame, images_root: str, extension: str,
                            width: int | None, height: int | None) -> DataFrame:
    """Without a manifest: one frame per distinct annotated frame id, image at `images_root/<frame>`;
    width and height null when they are to come from the images."""
    frame = F.col("frame_id")
    name = F.when(frame.rlike(_IMAGE_EXT), frame).otherwise(F.concat(frame, F.lit("." + extension)))
    return annotations.select("frame_id").where(frame.isNotNull()).distinct().select(
        "frame_id",
        resolve_uri(name, images_root).alias("image_uri"),
        F.lit(width).cast("int").alias("width"),
        F.lit(height).cast("int").alias("height"),
        F.lit(None).cast("string").alias("hint"),
    )


def frame_hints_from_annotations(annotations: DataFrame, value: Column) -> DataFrame:
    """Per frame, the set of values (a split or group) its annotation rows carry: frame_id, hints."""
    return (annotations.where(F.col("frame_id").isNotNull())
            .groupBy("frame_id").agg(F.array_sort(F.collect_set(value)).alias("hints")))


def is_safe_frame_id(frame: Column) -> Column:
    """False (never null) when the frame id could not serve as a plain file name inside the output."""
    key = F.regexp_replace(frame, _IMAGE_EXT, "")
    safe = frame.rlike(_SAFE_FRAME_ID) & ~frame.startswith(".") & (frame == F.trim(frame)) & (key != "")
    return F.coalesce(safe, F.lit(False))


def check_frames(frames: DataFrame, sizes_given: bool = True) -> DataFrame:
    """Add key (frame id minus image extension), ext (of the image) and `frame_reason`.

    `sizes_given` false: width and height are null until the images are read (`apply_image_facts`)."""
    frame = F.col("frame_id")
    with_key = frames.select(
        "*",
        F.regexp_replace(frame, _IMAGE_EXT, "").alias("key"),
        F.regexp_extract(F.col("image_uri"), r"\.([A-Za-z0-9]+)$", 1).alias("ext"),
    )
    # One window: frames sharing an id share its key too, so "key taken twice" covers "id given twice".
    n_key = F.count(F.lit(1)).over(Window.partitionBy("key"))
    bad_size = (F.col("width") <= 0) | (F.col("height") <= 0)
    if sizes_given:
        bad_size = F.col("width").isNull() | F.col("height").isNull() | bad_size
    reason = (F.when(~is_safe_frame_id(frame), F.lit(R.UNSAFE_FRAME_ID))
              .when(n_key > 1, F.lit(R.AMBIGUOUS_FRAME_ID))
              .when(bad_size, F.lit(R.INVALID_IMAGE_SIZE))
              .when(~F.lower(F.col("ext")).isin(*YOLO_IMAGE_FORMATS), F.lit(R.UNSUPPORTED_IMAGE_FORMAT)))
    return with_key.withColumn("frame_reason", reason)


def apply_image_facts(frames: DataFrame, sizes_given: bool, size_mismatch: str) -> DataFrame:
    """After `image_facts.add_image_facts`: the image's reason becomes the frame's, and width/height become
    the displayed size (EXIF orientations 5-8 turn the image a quarter: the stored sides swap), which the
    boxes are normalised by. A given size (manifest, image_size) that disagrees is image_size_mismatch, or
    is replaced by the image's with `size_mismatch` trust_image."""
    turned = F.col("orientation").isin(5, 6, 7, 8)
    width = F.when(turned, F.col("stored_height")).otherwise(F.col("stored_width"))
    height = F.when(turned, F.col("stored_width")).otherwise(F.col("stored_height"))
    reason = F.coalesce(F.col("frame_reason"), F.col("image_reason"))
    if sizes_given and size_mismatch == "quarantine":
        mismatch = (F.col("width") != width) | (F.col("height") != height)
        reason = F.coalesce(reason, F.when(mismatch, F.lit(R.IMAGE_SIZE_MISMATCH)))
    kept = [c for c in frames.columns if c not in ("frame_reason", "width", "height", "image_reason")]
    return frames.select(*kept, reason.alias("frame_reason"), F.coalesce(width, F.col("width")).alias("width"),
                         F.coalesce(height, F.col("height")).alias("height"))


def _unit_hash(*cols: Column) -> Column:
    """A stable number in [0, 1) from the columns (xxhash64: same value on every Spark version and node)."""
    return F.pmod(F.xxhash64(*cols), F.lit(_HASH_BUCKETS)) / _HASH_BUCKETS


def assign_split_by_hash(frames: DataFrame, ratios: Mapping[str, float], seed: int) -> DataFrame:
    """Split = hash of the group (`hint`, e.g. the video id; the frame id when absent) with `seed`.

    A group never straddles splits, and adding groups later never moves existing ones.
    """
    u = _unit_hash(F.lit(f"split:{seed}"), F.coalesce(F.col("hint"), F.col("frame_id")))
    used = [name for name in SPLITS if ratios.get(name, 0.0) > 0]
    split, upper = F.when(F.lit(False), F.lit(None)), 0.0
    for name in used[:-1]:
        upper += ratios[name]
        split = split.when(u < upper, F.lit(name))
    # The last split takes the rest, so float rounding in the ratios never leaves a frame unassigned.
    return frames.withColumn("split", split.otherwise(F.lit(used[-1])))


def assign_split_from_values(frames: DataFrame, mapping: Mapping[str, str]) -> DataFrame:
    """Split from `hints` (array of source values for the frame) mapped through `mapping`.

    Values missing from the mapping must already be train/val/test; otherwise frame_reason unknown_split.
    Rows of one frame naming different splits give conflicting_split.
    """
    table = {**{s: s for s in SPLITS}, **mapping}
    lookup = F.create_map(*[item for k, v in table.items() for item in (F.lit(k), F.lit(v))])
    mapped = F.array_distinct(F.transform(F.col("hints"), lambda v: F.coalesce(lookup[v], F.lit("?"))))
    reason = (F.when(F.col("frame_reason").isNotNull(), F.col("frame_reason"))
              .when(F.coalesce(F.size("hints"), F.lit(0)) <= 0, F.lit(R.UNKNOWN_SPLIT))
              .when(F.array_contains(mapped, "?"), F.lit(R.UNKNOWN_SPLIT))
              .when(F.size(mapped) > 1, F.lit(R.CONFLICTING_SPLIT)))
    return frames.withColumn("split", F.when(reason.isNull(), mapped[0])).withColumn("frame_reason", reason)


def frame_status(frames: DataFrame, policy: str, fraction: float, seed: int) -> DataFrame:
    """Add `status`: labeled | background | background_dropped | all_boxes_quarantined | <frame reason>.

    Needs box_count (good boxes) and annotated (any annotation row). Background = no annotation row at all;
    a frame whose every box was quarantined is not written: an empty label would teach "nothing here".
    """
    keep_bg = {"keep": F.lit(True), "drop": F.lit(False),
               "sample": _unit_hash(F.lit(f"background:{seed}"), F.col("key")) < fraction}[policy]
    status = (F.when(F.col("frame_reason").isNotNull(), F.col("frame_reason"))
              .when(F.col("box_count") > 0, F.lit("labeled"))
              .when(F.col("annotated"), F.lit("all_boxes_quarantined"))
              .when(keep_bg, F.lit("background"))
              .otherwise(F.lit("background_dropped")))
    return frames.withColumn("status", status)


def shard_buckets(split_counts: Mapping[str, int], frames_per_shard: int) -> dict[str, int]:
    """Hash buckets per split, sized so a bucket rarely overflows one shard (overflow opens a sub-shard)."""
    return {split: max(1, math.ceil(n / (frames_per_shard * 0.9))) for split, n in split_counts.items()}


def assign_shards(frames: DataFrame, buckets: Mapping[str, int], frames_per_shard: int) -> DataFrame:
    """Add `shard`: "<bucket>" or "<bucket>_<n>", never more than `frames_per_shard` frames each.

    Bucket = hash of the key, so the work spreads evenly without a global sort; within a bucket the
    frames are numbered in key order (a window over one bucket, about one shard of rows).
    """
    n_buckets = F.create_map(*[item for s, n in buckets.items() for item in (F.lit(s), F.lit(n))])[F.col("split")]
    with_bucket = frames.withColumn("_bucket", F.pmod(F.xxhash64(F.col("key")), n_buckets))
    rank = F.row_number().over(Window.partitionBy("split", "_bucket").orderBy("key")) - 1
    sub = F.floor(rank / frames_per_shard)
    shard = F.when(sub == 0, F.format_string("%05d", "_bucket")).otherwise(
        F.format_string("%05d_%d", "_bucket", sub))
    return with_bucket.withColumn("shard", shard).drop("_bucket")
