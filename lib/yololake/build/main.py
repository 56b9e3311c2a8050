"""The build-dataset job: annotations (+ frame manifest) -> a YOLOv5-ready dataset folder.

    spark-submit jobs/build_dataset.py --config CONF.yaml --annotations URI [URI ...] [--frames URI]
        [--images URI] --out URI [--overwrite] [--set key=value ...]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from yololake import output_dir
from yololake.build.config import JobConfig, check_run, load_config
from yololake.build.fingerprint import compute
from yololake.build.plan import JobInputs, Plan, build_plan
from yololake.build.shard_writer import SHARD_SCHEMA, ShardSpec, ShardWriter, make_shard_writer
from yololake.build.summary import RowCounts, format_summary, summarize
from yololake.build.transforms.frames import assign_shards, shard_buckets
from yololake.cli import add_job_flags, run_command
from yololake.dataset import layout as L
from yololake.dataset import reasons as R
from yololake.dataset.versions import VersionedOutput, failure_marked, heartbeat, new_version_id, writer_info
from yololake.errors import InputError, QuarantineThresholdError, StorageError
from yololake.input_files import read_errors
from yololake.logs import progress
from yololake.spark_session import size_shuffle_partitions, start_spark
from yololake.storage import Store, json_bytes
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
    p.add_argument("--out", required=True, help="output folder: each build adds a version under OUT/versions/ "
                                                "and points OUT/dataset.yaml at it")
    p.add_argument("--force", "--overwrite", dest="force", action="store_true",
                   help="build a new version even when the inputs and config are those of the current one")
    add_job_flags(p, "output.frames_per_shard=500")
    return p.parse_args(argv)


def current_if_same(config: JobConfig, out: str, fingerprint: dict) -> dict | None:
    """The current version's summary when it was built from this very fingerprint (no Spark needed)."""
    output = VersionedOutput(Store(out, config.storage))
    version_id = output.current_id()
    success = output.version(version_id).success if version_id else None
    if not success or success.get("fingerprint", {}).get("digest") != fingerprint["digest"]:
        return None
    return {**success, "up_to_date": True, "version": version_id,
            "out": output.version_store(version_id).display(), "pointer": output.store.display(L.DATASET_YAML)}


def run(spark: SparkSession, config: JobConfig, inputs: JobInputs, out: str, force: bool = False,
        shard_writer: Callable[[ShardSpec], ShardWriter] = make_shard_writer, fingerprint: dict | None = None) -> dict:
    """Build a new version of the dataset at `out` (a local path or any fsspec URL) and point
    OUT/dataset.yaml at it; return the summary (also the version's stats.json). An unchanged rerun
    (same fingerprint as the current version, unless `force`) returns the current version's summary."""
    started = time.monotonic()
    check_run(config, out, inputs.frames)
    fingerprint = fingerprint or compute(config, inputs)
    current = None if force else current_if_same(config, out, fingerprint)
    if current:
        return current
    partitions = size_shuffle_partitions(spark, fingerprint["bytes"])
    log.info("shuffle partitions: %d (input %.1f MB)", partitions, fingerprint["bytes"] / 2**20)
    plan = build_plan(spark, config, inputs)
    config = plan.config or config  # classes.names taken from a labeling tool's export when omitted
    try:
        output = VersionedOutput(Store(out, config.storage))
        output.open()
        output.clean_leftovers(config.output.stale_after_seconds)
        run_id = uuid.uuid4().hex
        version_id = new_version_id(run_id)
        store = output.version_store(version_id)
        output_dir.claim(store, False, {"run_id": run_id, "version": version_id, "inputs": inputs.__dict__,
                                        "out": store.display(), "fingerprint": fingerprint,
                                        "started_at": time.time(), **writer_info()})
        with failure_marked(store), heartbeat(store, max(1.0, config.output.stale_after_seconds / 10)):
            with read_errors("input", {"annotations": plan.sources, "frames": inputs.frames}):  # Spark reads here
                summary = _build_version(config, plan, store, shard_writer, started, run_id, version_id)
            output_dir.commit(store, {"run_id": run_id, "version": version_id, "fingerprint": fingerprint,
                                      "frames": summary["frames_written"], "boxes": summary["boxes_written"],
                                      "committed": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
        output.point_to(version_id, store.read(L.DATASET_YAML))
        progress(log, f"commit: version {version_id}", started)
        summary["pointer"] = output.store.display(L.DATASET_YAML)
        return summary
    finally:
        plan.release()  # a failed run too: the session may live on (tests, notebooks)


def _build_version(config: JobConfig, plan: Plan, store: Store, shard_writer: Callable[[ShardSpec], ShardWriter],
                   started: float, run_id: str, version_id: str) -> dict:
    """Everything of one version but its commit: quarantine, shards, lists, stats, manifests, report."""
    summary, splits, manifest = _write(config, plan, store, shard_writer, started)
    summary.update(run_id=run_id, version=version_id, layout=config.output.layout,
                   wall_seconds=round(time.monotonic() - started, 1))
    _publish(plan, config, store, summary, splits, manifest, started)
    return summary


def _frame_counts(plan: Plan) -> list:
    """One pass over the (cached) frame table for every count the job reports and reconciles: per status and
    split, the frames, the boxes kept, and the valid and clipped annotation rows behind them."""
    return plan.frames.groupBy("status", "split").agg(
        F.count(F.lit(1)).alias("frames"), F.sum("box_count").alias("boxes"),
        F.sum("valid_rows").alias("valid"), F.sum("clipped_rows").alias("clipped")).collect()


def _validate(plan: Plan, config: JobConfig, store: Store, started: float, frame_counts: list) -> RowCounts:
    """Write the quarantine (its writers count the rows by reason), refuse an empty input and enforce the
    threshold; return the row counts. Valid rows come from the frame table: no second pass over the rows."""
    reasons = write_parquet_parts(plan.quarantine(), store, L.QUARANTINE, count_by="reason")
    valid = sum(r["valid"] or 0 for r in frame_counts)
    quarantined = sum(reasons.values())
    rows_in = valid + quarantined
    progress(log, f"validate: {rows_in} rows, {quarantined} quarantined", started)
    if rows_in == 0:
        raise InputError(f"the annotations hold no rows ({', '.join(plan.sources)}), so there is nothing to build; "
                         "check --annotations (a CSV file with only its header has no rows)")
    fraction = quarantined / rows_in
    if fraction > config.quarantine.max_fraction:
        raise QuarantineThresholdError(
            f"{quarantined} of {rows_in} annotation rows ({fraction:.1%}) were quarantined, above "
            f"quarantine.max_fraction {config.quarantine.max_fraction:.1%}; nothing was committed. Reasons: "
            f"{json.dumps(reasons, sort_keys=True)}.{_unknown_class_hint(plan, config, reasons)} Inspect "
            f"{store.display(L.QUARANTINE)}, fix the input or config, or raise the threshold")
    return RowCounts(rows_in, valid, quarantined, reasons, sum(r["clipped"] or 0 for r in frame_counts))


def _unknown_class_hint(plan: Plan, config: JobConfig, reasons: dict) -> str:
    """When unknown_class is the commonest reason: the commonest unmapped values beside the configured ones."""
    if max(reasons, key=reasons.get) != R.UNKNOWN_CLASS:
        return ""
    top = ", ".join(f"{'null' if v is None else repr(v)} ({n} rows)" for v, n in plan.top_values(R.UNKNOWN_CLASS,
                                                                                                  "class_raw"))
    where = "classes.map" if config.classes.map else "classes.names (there is no classes.map)"
    return (f" Most of them are unknown_class: the commonest class values are {top}, but {where} "
            f"has {', '.join(config.classes.map or config.classes.names)}.")


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
    frame_counts = _frame_counts(plan)
    counts = _validate(plan, config, store, started, frame_counts)
    statuses: dict = {}
    split_counts: dict = {}
    for r in frame_counts:
        statuses[r["status"]] = statuses.get(r["status"], 0) + r["frames"]
        if r["status"] in L.WRITTEN_STATUSES:
            split_counts[r["split"]] = split_counts.get(r["split"], 0) + r["frames"]
    if not split_counts.get("train"):
        raise InputError(f"no frame is left for the train split (frames by status: {json.dumps(statuses)}), so "
                         "there is nothing to train on; check the train input (a CSV file with only its header "
                         "has no rows) and split.*; nothing was committed")
    shards = _write_shards(plan, config, store, split_counts, shard_writer)
    progress(log, f"write: {len(shards)} shards, {sum(s['frames'] for s in shards)} frames", started)

    output_dir.sweep_temporaries(store)
    splits = [s for s in L.SPLITS if s in L.REQUIRED_SPLITS or split_counts.get(s)]
    for split in splits:
        output_dir.publish_list(store, split)
    written = sum(s["boxes"] for s in shards)
    duplicates = counts.valid - sum(r["boxes"] or 0 for r in frame_counts)
    if counts.rows_in != written + counts.quarantined + duplicates or duplicates < 0:
        raise RuntimeError(f"counts do not reconcile: {counts.rows_in} rows in != {written} written + "
                           f"{counts.quarantined} quarantined + {duplicates} duplicates; nothing was committed")
    summary = summarize(plan, config, store.display(), counts, written, duplicates, shards, statuses)
    return summary, splits, [{k: v for k, v in s.asDict().items() if k not in ("error", "classes")} for s in shards]


def _publish(plan: Plan, config: JobConfig, store: Store, summary: dict, splits: list[str],
             manifest: list[dict], started: float) -> None:
    """The driver-side files: stats.json, shards.json, dataset.yaml and the report (local --out)."""
    store.put(L.STATS_JSON, json_bytes(summary))
    store.put(L.SHARDS_JSON, json_bytes(manifest))
    store.put(L.DATASET_YAML, L.dataset_yaml(store.root if store.local else store.display(),
                                             config.classes.names, splits, summary["version"]))
    if not config.report.enabled:
        return
    from yololake.report.job import write_job_report  # matplotlib is only loaded when a report is wanted

    frames = plan.frames_to_write().select("split", "key", F.col("image_uri").alias("source_image"), "width",
                                           "height", "box_count", F.col("labels").alias("text"))
    write_job_report(frames, store, config.classes.names, summary, config.report.preview_frames, config.split.seed)
    progress(log, "report", started)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        config = load_config(args.config, args.overrides)
        check_run(config, args.out, args.frames)  # before Spark starts: a config mistake costs seconds
        inputs = JobInputs(tuple(args.annotations), tuple(args.frames), args.images)
        fingerprint = compute(config, inputs)
        current = None if args.force else current_if_same(config, args.out, fingerprint)
        if not current:  # an unchanged rerun touches nothing and starts no Spark
            VersionedOutput(Store(args.out, config.storage)).check()  # a foreign --out: refused before Spark
            spark = start_spark("yololake-build-dataset", args.master, config.spark, config.spark_ui_bind)
            current = run(spark, config, inputs, args.out, args.force, fingerprint=fingerprint)
        print(format_summary(current))
        return 0

    return run_command("build_dataset", body)
