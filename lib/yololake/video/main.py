"""The extract-frames job: videos -> sampled JPEG frames + the frame manifest the build-dataset job reads.

    spark-submit jobs/extract_frames.py --videos URI --out URI [--config CONF.yaml]
        [--fps F | --every-n N] [--max-frames N] [--overwrite] [--set key=value ...]
"""
from __future__ import annotations

import argparse
import logging
import time
import uuid
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from yololake import output_dir
from yololake.cli import add_job_flags, run_command
from yololake.dataset.layout import QUARANTINE, STATS_JSON
from yololake.logs import progress
from yololake.spark_session import start_spark
from yololake.storage import Store, json_bytes
from yololake.tables import write_parquet_parts
from yololake.video import tasks as T
from yololake.video.config import ExtractConfig, load_extract_config

log = logging.getLogger("yololake.extract_frames")
QUARANTINE_COLUMNS = ("video_id", "uri", "reason", "detail")
# Tasks per core for the decode stage: many small tasks balance segments of unequal cost.
_TASKS_PER_CORE = 32


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="extract_frames", description=__doc__.splitlines()[0])
    p.add_argument("--videos", required=True, help="folder/prefix of video files, or a table (video_id, uri)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--config", help="YAML config (see conf/extract_frames.yaml); defaults without it")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--fps", type=float, help="sample this many frames per second (overrides the config)")
    rate.add_argument("--every-n", type=int, help="keep every N-th frame (overrides the config)")
    p.add_argument("--max-frames", type=int, help="most frames per video, evenly spaced (overrides the config)")
    p.add_argument("--overwrite", action="store_true", help="replace a committed output at --out")
    add_job_flags(p, "image.quality=80")
    return p.parse_args(argv)


def cli_overrides(args: argparse.Namespace) -> list[str]:
    """The rate flags as config overrides; one rate flag clears the other policy from the config."""
    extra = []
    if args.fps is not None:
        extra += [f"sampling.fps={args.fps!r}", "sampling.every_n=0"]
    if args.every_n is not None:
        extra += [f"sampling.every_n={args.every_n}", "sampling.fps=0"]
    if args.max_frames is not None:
        extra.append(f"sampling.max_frames={args.max_frames}")
    return list(args.overrides) + extra


def _balanced(spark: SparkSession, segments: DataFrame, n_segments: int) -> DataFrame:
    """Spread the segments over the decode tasks: slot = (hash of the video + segment number) mod n, range-
    partitioned on the slot (a JVM-only sample of the cached plan), so consecutive segments of one video
    land in different tasks and one long video is decoded in parallel. Plain hash partitioning of the
    slot would hash it again and let segments of a video collide in one task."""
    n = max(1, min(n_segments, spark.sparkContext.defaultParallelism * _TASKS_PER_CORE))
    slot = F.pmod(F.xxhash64("video_id") + F.col("segment"), F.lit(n))
    return segments.withColumn("_slot", slot).repartitionByRange(n, "_slot").drop("_slot")


def _counts(df: DataFrame, *aggregates) -> dict:
    """Small aggregates by reason (null = fine): {reason: Row}."""
    return {r["reason"]: r for r in df.groupBy("reason").agg(F.count(F.lit(1)).alias("n"), *aggregates).collect()}


def _reconciled_counts(by_id: dict, planned: dict, kinds: dict, n_segments: int) -> dict:
    """The summary's counts from the three small aggregates; RuntimeError when they do not add up."""
    reasons: dict[str, int] = {}
    for key, row in [*by_id.items(), *planned.items()] + [(k[1], r) for k, r in kinds.items() if k[0] == "segment"]:
        if key is not None:
            reasons[key] = reasons.get(key, 0) + row["n"]
    frame_row = kinds.get(("frame", None))
    n_frames = frame_row["n"] if frame_row else 0
    segs = [r for k, r in kinds.items() if k[0] == "segment"]
    kept, decoded = sum(r["kept"] or 0 for r in segs), sum(r["decoded"] or 0 for r in segs)
    n_listed = sum(r["n"] for r in by_id.values())
    n_planned = planned[None]["videos"] if None in planned else 0
    video_level = sum(r["n"] for k, r in by_id.items() if k) + sum(r["n"] for k, r in planned.items() if k)
    if (n_frames != kept or (frame_row and frame_row["ids"] != n_frames) or sum(r["n"] for r in segs) != n_segments
            or n_listed != n_planned + video_level):
        raise RuntimeError(f"counts do not reconcile: {n_frames} manifest rows ({frame_row and frame_row['ids']} "
                           f"distinct ids), {kept} frames kept by {sum(r['n'] for r in segs)} of {n_segments} "
                           f"segments; {n_listed} videos listed != {n_planned} planned + {video_level} "
                           "quarantined; nothing was committed")
    return {"videos_listed": n_listed, "videos_planned": n_planned, "videos_quarantined": video_level,
            "videos_with_frames": frame_row["videos"] if frame_row else 0, "segments": n_segments,
            "frames_decoded": decoded, "frames_written": n_frames,
            "bytes_written": frame_row["bytes"] if frame_row else 0,
            "quarantine_by_reason": dict(sorted(reasons.items()))}


def run(spark: SparkSession, config: ExtractConfig, videos: str, out: str, overwrite: bool = False) -> dict:
    """Run the job into `out` (a local path or any fsspec URL); return the summary (also stats.json)."""
    started = time.monotonic()
    store = Store(out, config.storage)
    listed = T.read_videos(spark, videos, config.input, config.storage)
    run_id = uuid.uuid4().hex
    output_dir.claim(store, overwrite, {"run_id": run_id, "videos": videos, "out": store.display()})

    checked = T.check_video_ids(listed, spark.sparkContext.defaultParallelism * 4).persist()
    bad_ids = checked.where(F.col("reason").isNotNull()).select(
        "video_id", "uri", "reason", F.concat(F.lit("video id "), F.to_json(F.array("video_id"))).alias("detail"))
    good = checked.where(F.col("reason").isNull()).select("video_id", "uri")
    s = config.sampling
    planner = T.make_planner(s.every_n, s.fps, s.max_frames, config.segments.seconds, config.storage)
    plan = good.mapInPandas(planner, T.PLAN_SCHEMA).persist()
    planned = _counts(plan, F.countDistinct("video_id").alias("videos"))
    n_segments = planned[None]["n"] if None in planned else 0
    progress(log, f"plan: {n_segments} segment(s)", started)

    extractor = T.make_extractor(store, config.image.quality, config.image.max_side)
    extracted = (_balanced(spark, plan.where(F.col("reason").isNull()), n_segments)
                 .mapInPandas(extractor, T.EXTRACT_SCHEMA).persist())
    # One aggregate decodes everything (once: the rows are cached) and gives every count below.
    kinds = {(r["kind"], r["reason"]): r for r in extracted.groupBy("kind", "reason").agg(
        F.count(F.lit(1)).alias("n"), F.countDistinct("frame_id").alias("ids"),
        F.countDistinct("video_id").alias("videos"), F.sum("bytes").alias("bytes"),
        F.sum("decoded").alias("decoded"), F.sum("kept").alias("kept")).collect()}
    progress(log, "decode + write JPEGs", started)

    frames = extracted.where(F.col("kind") == "frame")
    write_parquet_parts(frames.select(*T.MANIFEST_COLUMNS), store, "manifest")
    seg_errors = extracted.where((F.col("kind") == "segment") & F.col("reason").isNotNull())
    quarantine = (bad_ids.unionByName(plan.where(F.col("reason").isNotNull()).select(*QUARANTINE_COLUMNS))
                  .unionByName(seg_errors.select(*QUARANTINE_COLUMNS)))
    # A few rows per bad video, from several small inputs: a few parts, not one per input partition.
    write_parquet_parts(quarantine.coalesce(spark.sparkContext.defaultParallelism), store, QUARANTINE)

    summary = {"out": store.display(), "run_id": run_id, "videos": videos,
               **_reconciled_counts(_counts(checked), planned, kinds, n_segments),
               "sampling": {"every_n": s.every_n, "fps": s.fps, "max_frames": s.max_frames,
                            "segment_seconds": config.segments.seconds},
               "wall_seconds": round(time.monotonic() - started, 1)}
    store.put(STATS_JSON, json_bytes(summary))
    output_dir.commit(store, {"run_id": run_id, "frames": summary["frames_written"],
                              "videos": summary["videos_with_frames"]})
    for df in (checked, plan, extracted):
        df.unpersist()
    progress(log, "commit", started)
    return summary


def format_summary(summary: dict) -> str:
    lines = [f"frame manifest: {summary['out']}/manifest",
             f"  {summary['videos_listed']} videos -> {summary['frames_written']} frames written "
             f"({summary['frames_decoded']} decoded in {summary['segments']} segment(s), "
             f"{summary['bytes_written'] / 1e6:.1f} MB) ({summary['wall_seconds']}s)"]
    if summary["quarantine_by_reason"]:
        reasons = ", ".join(f"{k}={v}" for k, v in summary["quarantine_by_reason"].items())
        lines.append(f"  quarantined: {reasons} (see {summary['out']}/quarantine)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        config = load_extract_config(args.config, cli_overrides(args))
        spark = start_spark("yololake-extract-frames", args.master, config.spark, config.spark_ui_bind)
        print(format_summary(run(spark, config, args.videos, args.out, args.overwrite)))
        return 0

    return run_command("extract_frames", body)
