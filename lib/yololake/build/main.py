"""The build-dataset job: annotations (+ frame manifest) -> a YOLOv5-ready dataset folder.

    spark-submit jobs/build_dataset.py --config CONF.yaml --annotations URI [URI ...] [--frames URI]
        [--images URI] --out URI [--overwrite] [--set key=value ...]
"""
from __future__ import annotations

import argparse
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from yololake import output_dir
from yololake.build.config import JobConfig, check_run, load_config
from yololake.build.plan import JobInputs, Plan, build_plan
from yololake.build.shard_writer import SHARD_SCHEMA, ShardSpec, ShardWriter, make_shard_writer
from yololake.build.summary import format_summary, summarize
from yololake.build.transforms.frames import assign_shards, shard_buckets
from yololake.cli import add_job_flags, run_command
from yololake.dataset import layout as L
from yololake.errors import QuarantineThresholdError, StorageError
from yololake.logs import progress
from yololake.spark_session import start_spark
from yololake.storage import Store
from yololake.tables import write_parquet_parts

log = logging.getLogger("yololake.build")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="build_dataset", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="YAML config (see conf/)")
    p.add_argument("--annotations", required=True, nargs="+", action="extend",
                   help="annotation table: file(s) or folder(s); parquet, csv or json")
    p.add_argument("--frames", nargs="+", action="extend", default=[],
                   help="frame manifest table (frame id, image, width, height); optional")
    p.add_argument("--images", help="base folder/URL for relative image paths, or of <frame> images "
                                    "when there is no manifest")
    p.add_argument("--out", required=True, help="output folder")
    add_job_flags(p, "output.frames_per_shard=500")
    return p.parse_args(argv)


def run(spark: SparkSession, config: JobConfig, inputs: JobInputs, out: str, overwrite: bool = False,
        shard_writer: Callable[[ShardSpec], ShardWriter] = make_shard_writer) -> dict:
    """Run the job into `out` (a local path or any fsspec URL); return the summary (also stats.json)."""
    started = time.monotonic()
    check_run(config, out, inputs.frames)
    store = Store(out, config.storage)
    plan = build_plan(spark, config, inputs)
    try:
        run_id = uuid.uuid4().hex
        output_dir.claim(store, overwrite, {"run_id": run_id, "inputs": inputs.__dict__, "out": store.display()})
        summary, splits, manifest = _write(config, plan, store, shard_writer, started)
        summary.update(run_id=run_id, layout=config.output.layout, wall_seconds=round(time.monotonic() - started, 1))
        _publish(spark, config, store, summary, splits, manifest, started)
        output_dir.commit(store, {"run_id": run_id, "frames": summary["frames_written"],
                                  "boxes": summary["boxes_written"]})
        progress(log, "commit", started)
        return summary
    finally:
        plan.release()  # a failed run too: the session may live on (tests, notebooks)


def _validate(plan: Plan, config: JobConfig, store: Store, started: float) -> tuple[int, int, int, dict]:
    """Write the quarantine and enforce its threshold; return rows in, valid, quarantined and the reasons."""
    write_parquet_parts(plan.quarantine(), store, L.QUARANTINE)
    reasons = {r["reason"]: r["count"] for r in plan.annotations.groupBy("reason").count().collect()}
    rows_in = sum(reasons.values())
    valid = reasons.pop(None, 0)
    quarantined = sum(reasons.values())
    progress(log, f"validate: {rows_in} rows, {quarantined} quarantined", started)
    fraction = quarantined / rows_in if rows_in else 0.0
    if fraction > config.quarantine.max_fraction:
        raise QuarantineThresholdError(
            f"{quarantined} of {rows_in} annotation rows ({fraction:.1%}) were quarantined, above "
            f"quarantine.max_fraction {config.quarantine.max_fraction:.1%}; nothing was committed. Reasons: "
            f"{json.dumps(reasons, sort_keys=True)}. Inspect {store.display(L.QUARANTINE)}, fix the input or "
            "config, or raise the threshold")
    return rows_in, valid, quarantined, reasons


def _write_shards(plan: Plan, config: JobConfig, store: Store, split_counts: dict,
                  shard_writer: Callable[[ShardSpec], ShardWriter]) -> list:
    """One Spark task per shard writes its labels, images, index part and list part; returns the manifest rows."""
    buckets = shard_buckets(split_counts, config.output.frames_per_shard)
    sharded = assign_shards(plan.frames_to_write(), buckets, config.output.frames_per_shard)
    spec = ShardSpec(store, config.images.mode, config.output.layout, config.output.archive_images)
    # About one task per shard: an explicit partition count, which adaptive execution does not coalesce.
    shards = (sharded.select("split", "shard", "key", "ext", "image_uri", "labels", "box_count", "frame_id",
                             "width", "height", "status", *L.IMAGE_FACT_COLUMNS)
              .repartition(max(1, sum(buckets.values())), "split", "shard")
              .groupBy("split", "shard")
              .applyInPandas(shard_writer(spec), SHARD_SCHEMA)
              .collect())  # one small row per shard; no orderBy: its sampling pass would run the writers twice
    shards.sort(key=lambda s: (s["split"], s["shard"]))
    failed = [s["error"] for s in shards if s["error"] and not s["error"].startswith("skipped: ")]
    if failed or any(s["error"] for s in shards):
        skipped = sum(1 for s in shards if s["error"]) - len(failed)
        first = failed[0] if failed else next(s["error"] for s in shards if s["error"])
        raise StorageError(f"{first} ({len(failed)} shard(s) failed, {skipped} skipped); nothing was committed")
    return shards


def _write(config: JobConfig, plan: Plan, store: Store, shard_writer: Callable[[ShardSpec], ShardWriter],
           started: float) -> tuple[dict, list[str], list[dict]]:
    """Quarantine, shards and list files; once the counts reconcile, return the summary, the splits written
    and the shard manifest."""
    rows_in, valid, quarantined, reasons = _validate(plan, config, store, started)
    # One pass over the frame table for every frame-level count (statuses, frames per split, boxes kept).
    frame_counts = plan.frames.groupBy("status", "split").agg(
        F.count(F.lit(1)).alias("frames"), F.sum("box_count").alias("boxes")).collect()
    statuses: dict = {}
    split_counts: dict = {}
    for r in frame_counts:
        statuses[r["status"]] = statuses.get(r["status"], 0) + r["frames"]
        if r["status"] in L.WRITTEN_STATUSES:
            split_counts[r["split"]] = split_counts.get(r["split"], 0) + r["frames"]
    shards = _write_shards(plan, config, store, split_counts, shard_writer)
    progress(log, f"write: {len(shards)} shards, {sum(s['frames'] for s in shards)} frames", started)

    output_dir.sweep_temporaries(store)
    splits = [s for s in L.SPLITS if s in L.REQUIRED_SPLITS or split_counts.get(s)]
    for split in splits:
        output_dir.publish_list(store, split)
    written = sum(s["boxes"] for s in shards)
    duplicates = valid - sum(r["boxes"] or 0 for r in frame_counts)
    if rows_in != written + quarantined + duplicates or duplicates < 0:
        raise RuntimeError(f"counts do not reconcile: {rows_in} rows in != {written} written + {quarantined} "
                           f"quarantined + {duplicates} duplicates; nothing was committed")
    summary = summarize(plan, config, store.display(), rows_in, written, quarantined, duplicates, reasons, shards,
                        statuses)
    return summary, splits, [{k: v for k, v in s.asDict().items() if k != "error"} for s in shards]


def _publish(spark: SparkSession, config: JobConfig, store: Store, summary: dict, splits: list[str],
             manifest: list[dict], started: float) -> None:
    """The driver-side files: stats.json, shards.json, dataset.yaml and the report (local --out)."""
    store.put(L.STATS_JSON, output_dir.json_bytes(summary))
    store.put(L.SHARDS_JSON, output_dir.json_bytes(manifest))
    store.put(L.DATASET_YAML, L.dataset_yaml(store.root if store.local else store.display(),
                                             config.classes.names, splits))
    if not config.report.enabled:
        return
    if not store.local:
        log.info("report skipped for an object-store --out; run `yololake report` on a local copy")
        return
    from yololake.report.main import write_report  # matplotlib is only loaded when a report is wanted

    write_report(spark, store.root, preview_frames=config.report.preview_frames, seed=config.split.seed,
                 names=config.classes.names, stats=summary)
    progress(log, "report", started)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        config = load_config(args.config, args.overrides)
        check_run(config, args.out, args.frames)  # before Spark starts: a config mistake costs seconds
        inputs = JobInputs(tuple(args.annotations), tuple(args.frames), args.images)
        spark = start_spark("yololake-build-dataset", args.master, config.spark)
        print(format_summary(run(spark, config, inputs, args.out, args.overwrite)))
        return 0

    return run_command("build_dataset", body)
