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
from yololake.config import JobConfig, load_config
from yololake.job_runner import progress, run_job
from yololake.pipeline import WRITTEN_STATUSES, JobInputs, Plan, build_plan
from yololake.readers import InputError
from yololake.shard_writer import SHARD_SCHEMA, ShardSpec, ShardWriter, make_shard_writer
from yololake.spark_session import start_spark
from yololake.storage import StorageError, Store
from yololake.table_writer import write_parquet_parts
from yololake.transforms.frames import assign_shards, shard_buckets

log = logging.getLogger("yololake.build_dataset")
SPLITS = ("train", "val", "test")


class QuarantineThresholdError(RuntimeError):
    """Too many rows were rejected; nothing was committed."""


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
    p.add_argument("--overwrite", action="store_true", help="replace a committed dataset at --out")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set output.frames_per_shard=500")
    p.add_argument("--master", help="Spark master for in-process runs (spark-submit sets its own)")
    return p.parse_args(argv)


def run(spark: SparkSession, config: JobConfig, inputs: JobInputs, out: str, overwrite: bool = False,
        shard_writer: Callable[[ShardSpec], ShardWriter] = make_shard_writer) -> dict:
    """Run the job into `out` (a local path or any fsspec URL); return the summary (also stats.json)."""
    started = time.monotonic()
    store = Store(out, config.storage)
    plan = build_plan(spark, config, inputs)
    try:
        return _write(spark, config, inputs, plan, store, overwrite, shard_writer, started)
    finally:
        plan.release()  # a failed run too: the session may live on (tests, notebooks)


def _write(spark: SparkSession, config: JobConfig, inputs: JobInputs, plan: Plan, store: Store, overwrite: bool,
           shard_writer: Callable[[ShardSpec], ShardWriter], started: float) -> dict:
    """Claim the output, write quarantine, shards, lists, stats and report, then commit."""
    run_id = uuid.uuid4().hex
    output_dir.claim(store, overwrite, {"run_id": run_id, "inputs": inputs.__dict__, "out": store.display()})

    write_parquet_parts(plan.quarantine(), store, "quarantine")
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
            f"{json.dumps(reasons, sort_keys=True)}. Inspect {store.display('quarantine')}, fix the input or "
            "config, or raise the threshold")

    # One pass over the frame table for every frame-level count (statuses, frames per split, boxes kept).
    frame_counts = plan.frames.groupBy("status", "split").agg(
        F.count(F.lit(1)).alias("frames"), F.sum("box_count").alias("boxes")).collect()
    statuses: dict = {}
    split_counts: dict = {}
    for r in frame_counts:
        statuses[r["status"]] = statuses.get(r["status"], 0) + r["frames"]
        if r["status"] in WRITTEN_STATUSES:
            split_counts[r["split"]] = split_counts.get(r["split"], 0) + r["frames"]
    to_write = plan.frames_to_write()
    buckets = shard_buckets(split_counts, config.output.frames_per_shard)
    sharded = assign_shards(to_write, buckets, config.output.frames_per_shard)
    spec = ShardSpec(store, config.images.mode, config.output.layout, config.output.archive_images)
    # About one task per shard: an explicit partition count, which adaptive execution does not coalesce.
    shards = (sharded.select("split", "shard", "key", "ext", "image_uri", "labels", "box_count", "frame_id",
                             "width", "height", "status")
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
    progress(log, f"write: {len(shards)} shards, {sum(s['frames'] for s in shards)} frames", started)

    output_dir.sweep_temporaries(store)
    splits = [s for s in SPLITS if s in ("train", "val") or split_counts.get(s)]
    for split in splits:
        output_dir.publish_list(store, split)

    written = sum(s["boxes"] for s in shards)
    duplicates = valid - sum(r["boxes"] or 0 for r in frame_counts)
    summary = summarize(plan, config, store.display(), rows_in, written, quarantined, duplicates, reasons, shards,
                        statuses)
    summary.update(run_id=run_id, layout=config.output.layout, wall_seconds=round(time.monotonic() - started, 1))
    if rows_in != written + quarantined + duplicates or duplicates < 0:
        raise RuntimeError(f"counts do not reconcile: {rows_in} rows in != {written} written + {quarantined} "
                           f"quarantined + {duplicates} duplicates; nothing was committed")
    manifest = [{k: v for k, v in s.asDict().items() if k != "error"} for s in shards]
    store.put("stats.json", output_dir.json_bytes(summary))
    store.put("shards.json", output_dir.json_bytes(manifest))
    store.put("dataset.yaml", output_dir.dataset_yaml(store.root if store.local else store.display(),
                                                      config.classes.names, splits))
    if config.report.enabled:
        if store.local:
            from yololake.report import write_report  # matplotlib is only loaded when a report is wanted

            write_report(spark, store.root, preview_frames=config.report.preview_frames, seed=config.split.seed,
                         names=config.classes.names, stats=summary)
            progress(log, "report", started)
        else:
            log.info("report skipped for an object-store --out; run `yololake report` on a local copy")
    output_dir.commit(store, {"run_id": run_id, "frames": summary["frames_written"], "boxes": written})
    progress(log, "commit", started)
    return summary


def summarize(plan: Plan, config: JobConfig, root: str, rows_in: int, written: int, quarantined: int,
              duplicates: int, reasons: dict, shards: list, statuses: dict) -> dict:
    """Counts by split, class, reason and frame status (all small aggregates)."""
    names = config.classes.names
    by_split_class: dict = {}
    for r in plan.boxes_by_split_and_class().collect():
        by_split_class.setdefault(r["split"], {})[names[r["cls"]]] = r["count"]
    frames_by_split = {}
    for s in shards:
        entry = frames_by_split.setdefault(s["split"], {"frames": 0, "background": 0, "boxes": 0, "shards": 0})
        entry["frames"] += s["frames"]
        entry["background"] += s["background"]
        entry["boxes"] += s["boxes"]
        entry["shards"] += 1
    return {
        "out": root,
        "rows_in": rows_in,
        "boxes_written": written,
        "quarantined": quarantined,
        "duplicates_dropped": duplicates,
        "quarantine_by_reason": dict(sorted(reasons.items())),
        "frames_written": sum(s["frames"] for s in shards),
        "frames_by_status": dict(sorted(statuses.items())),
        "by_split": frames_by_split,
        "boxes_by_split_and_class": by_split_class,
    }


def format_summary(summary: dict) -> str:
    lines = [f"dataset: {summary['out']}/dataset.yaml",
             f"  {summary['rows_in']} annotation rows -> {summary['boxes_written']} boxes written, "
             f"{summary['quarantined']} quarantined, {summary['duplicates_dropped']} duplicates dropped "
             f"({summary['wall_seconds']}s)"]
    for split, s in summary["by_split"].items():
        lines.append(f"  {split:5s}: {s['frames']} frames ({s['background']} background), {s['boxes']} boxes, "
                     f"{s['shards']} shard(s)")
    if summary["quarantine_by_reason"]:
        reasons = ", ".join(f"{k}={v}" for k, v in summary["quarantine_by_reason"].items())
        lines.append(f"  quarantined by reason: {reasons} (see {summary['out']}/quarantine)")
    if "val" not in summary["by_split"]:
        lines.append("  warning: the val split is empty; YOLOv5 needs validation images")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> str:
        config = load_config(args.config, args.overrides)
        inputs = JobInputs(tuple(args.annotations), tuple(args.frames), args.images)
        spark = start_spark("yololake-build-dataset", args.master, config.spark)
        return format_summary(run(spark, config, inputs, args.out, args.overwrite))

    return run_job("build_dataset", body, (InputError, KeyError, output_dir.OutputExistsError,
                                           QuarantineThresholdError, StorageError))
