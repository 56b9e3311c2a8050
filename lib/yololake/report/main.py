"""The dataset report: `yololake report OUT` renders charts and preview mosaics into OUT/report/.

    yololake report OUT [--preview-frames 16] [--seed 0] [--master local[*]]

Spark reads the label text (per shard, driven by OUT/index, so no listing of millions of files on the
driver) and aggregates histograms with Spark expressions; the driver collects only bins, counts and a
small sample of frames chosen by a hash of their key. Pictures: yololake.report.draw; page: yololake.report.html.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from yololake.cli import run_command
from yololake.dataset import layout as L
from yololake.dataset.versions import current_folder
from yololake.errors import DatasetError, StorageError, UsageError
from yololake.report import draw as D
from yololake.report.html import render_index
from yololake.spark_session import start_spark
from yololake.storage import atomic_folder, describe_error

log = logging.getLogger("yololake.report")
BINS = 50          # histogram bins per axis (centres, sizes)
BOX_CAP = 30       # boxes-per-frame histogram: the last bin is "30 or more"
TILE = 320         # preview tiles are scaled to at most this many pixels wide
_TEXT_SCHEMA = "split string, key string, text string"


def _read_shard_labels(root: str) -> callable:
    """Per (split, shard) group of index rows: the label text of each frame (files or one tar per shard)."""
    import tarfile

    def read(group: pd.DataFrame) -> pd.DataFrame:
        split, shard = str(group["split"].iloc[0]), str(group["shard"].iloc[0])
        archive = os.path.join(root, L.label_archive(split, shard))
        texts = []
        if os.path.isfile(archive):  # output.layout shard_archive
            wanted = {L.label_file(split, shard, k): k for k in group["key"]}
            found = {}
            with tarfile.open(archive) as tar:
                for member in tar:
                    if member.name in wanted:
                        found[wanted[member.name]] = tar.extractfile(member).read().decode("utf-8")
            texts = [found.get(k, "") for k in group["key"]]
        else:
            folder = os.path.join(root, L.labels_folder(split, shard))
            for key in group["key"]:
                with open(os.path.join(folder, f"{key}.txt"), encoding="utf-8") as f:
                    texts.append(f.read())
        return pd.DataFrame({"split": split, "key": group["key"].to_numpy(), "text": texts})

    return read


def label_boxes(index: DataFrame, root: str) -> DataFrame:
    """One row per label line of the dataset at `root`: split, key, cls, cx, cy, w, h."""
    texts = index.select("split", "shard", "key").groupBy("split", "shard").applyInPandas(
        _read_shard_labels(root), _TEXT_SCHEMA)
    return text_boxes(texts)


def text_boxes(texts: DataFrame) -> DataFrame:
    """split, key, text (a label file's content) -> one row per line: split, key, cls, cx, cy, w, h
    (parsed with Spark expressions)."""
    lines = texts.select("split", "key", F.explode(F.split("text", "\n")).alias("line")).where(F.col("line") != "")
    parts = F.split("line", " ")
    boxes = lines.select("split", "key", parts[0].try_cast("int").alias("cls"),
                         *[parts[i + 1].try_cast("double").alias(c) for i, c in enumerate(("cx", "cy", "w", "h"))])
    return boxes.where(F.col("cls").isNotNull() & F.col("h").isNotNull())


def read_parquet_folder(spark: SparkSession, path: str) -> DataFrame:
    """A folder of parquet parts, flat or nested (index/<split>/<shard>.parquet): no partition discovery."""
    return spark.read.option("recursiveFileLookup", "true").parquet(path)


def _bin(col: str) -> F.Column:
    return F.least(F.floor(F.col(col) * BINS), F.lit(BINS - 1)).cast("int")


def box_counts(boxes: DataFrame) -> tuple[dict, np.ndarray, np.ndarray]:
    """Boxes per (split, class) and BINS x BINS histograms of the centres (cx, cy) and sizes (w, h), in one
    aggregation over the boxes (grouping sets: one pass, only the non-empty cells collected)."""
    centres, sizes = np.zeros((BINS, BINS), dtype=np.int64), np.zeros((BINS, BINS), dtype=np.int64)
    classes: dict = {}
    binned = boxes.select("split", "cls", *(_bin(c).alias(f"b{c}") for c in ("cx", "cy", "w", "h")))
    sets = [["split", "cls"], ["bcx", "bcy"], ["bw", "bh"]]
    columns = sum(sets, [])
    # grouping_id(): one bit per grouping column, first column highest, set where the row is not grouped by it
    gid = [sum(1 << (len(columns) - 1 - i) for i, c in enumerate(columns) if c not in group) for group in sets]
    rows = binned.groupingSets(sets, *columns).agg(F.count(F.lit(1)).alias("n"),
                                                   F.grouping_id().alias("gid")).collect()
    for r in rows:
        kind = gid.index(r["gid"])
        if kind == 0:
            classes[(r["split"], r["cls"])] = r["n"]
        else:
            x, y = sets[kind]
            (centres if kind == 1 else sizes)[r[x], r[y]] = r["n"]
    return classes, centres, sizes


def aggregate(spark: SparkSession, root: str, names: Sequence[str]) -> dict:
    """All the report's numbers for the dataset at `root`: small dicts and arrays, computed by Spark."""
    index = read_parquet_folder(spark, os.path.join(root, L.INDEX))
    reasons = {}
    if os.path.isdir(os.path.join(root, L.QUARANTINE)):
        quarantine = read_parquet_folder(spark, os.path.join(root, L.QUARANTINE))
        reasons = {r["reason"]: r["count"] for r in quarantine.groupBy("reason").count().collect()}
    return aggregate_tables(label_boxes(index, root), index, reasons, names)


def aggregate_tables(boxes: DataFrame, frames: DataFrame, reasons: dict, names: Sequence[str]) -> dict:
    """The report's numbers from one row per box (split, cls, cx, cy, w, h) and one per written frame
    (split, box_count), plus the quarantine's counts by reason."""
    classes: dict = {}
    by_split_class, centres, sizes = box_counts(boxes)
    for (split, cls), count in sorted(by_split_class.items()):
        classes.setdefault(split, {})[names[cls] if 0 <= cls < len(names) else str(cls)] = count
    per_frame: dict = {}
    for r in frames.groupBy("split", F.least("box_count", F.lit(BOX_CAP)).alias("n")).count().collect():
        per_frame.setdefault(r["split"], {})[int(r["n"])] = r["count"]
    order = {s: i for i, s in enumerate(L.SPLITS)}
    return {"classes": dict(sorted(classes.items(), key=lambda kv: order.get(kv[0], 9))),
            "centres": centres, "sizes": sizes,
            "per_frame": dict(sorted(per_frame.items(), key=lambda kv: order.get(kv[0], 9))),
            "reasons": dict(sorted(reasons.items()))}


def sample_frames(index: DataFrame, split: str, n: int, seed: int,
                  columns: Sequence[str] = ("key", "split", "shard", "ext", "source_image", "width", "height")
                  ) -> list[dict]:
    """`n` frames of `split` chosen by a seeded hash of the key: stable across runs, spread over all shards.
    orderBy + limit runs as a per-partition top-n, so only n rows per partition move."""
    rank = F.xxhash64(F.lit(f"report:{seed}"), F.col("key"))
    rows = index.where(F.col("split") == split).orderBy(rank, "key").limit(n).select(*columns).collect()
    return [r.asDict() for r in rows]


def _frame_image(root: str, frame: dict) -> np.ndarray:
    """The output's copy or link of the frame's image, else its source (a grey canvas when neither is there)."""
    output = os.path.join(root, L.image_file(frame["split"], frame["shard"], frame["key"], frame["ext"]))
    return D.load_frame_image([output, frame.get("source_image") or ""], int(frame["width"]),
                              int(frame["height"]), TILE)


def read_label_file(root: str, frame: dict) -> list[D.Box]:
    path = os.path.join(root, L.label_file(frame["split"], frame["shard"], frame["key"]))
    archive = os.path.join(root, L.label_archive(frame["split"], frame["shard"]))
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
    else:
        text = _read_shard_labels(root)(pd.DataFrame([frame]))["text"].iloc[0] if os.path.isfile(archive) else ""
    return D.parse_label_text(text)


def write_report(spark: SparkSession, out_root: str, preview_frames: int = 16, seed: int = 0,
                 names: Sequence[str] | None = None, stats: dict | None = None) -> str:
    """Render OUT/report/ (charts, preview mosaics, index.html) for the dataset at local folder `out_root`
    (a versioned output: its current version).

    `names` and `stats` default to the dataset's dataset.yaml names and stats.json. Returns the report folder.
    The folder is built aside and renamed into place, so a failed report never leaves half a report.
    """
    started = time.monotonic()
    root = current_folder(os.path.abspath(out_root))
    if not os.path.isdir(os.path.join(root, L.INDEX)):
        raise DatasetError(f"{root} has no index/ folder, so it is not a dataset written by yololake "
                          "build-dataset; pass the job's --out folder")
    if names is None:
        names = _load_names(root)
    if stats is None and os.path.isfile(os.path.join(root, L.STATS_JSON)):
        with open(os.path.join(root, L.STATS_JSON), encoding="utf-8") as f:
            stats = json.load(f)
    numbers = aggregate(spark, root, names)
    log.info("report: aggregates done after %.1fs", time.monotonic() - started)
    index = read_parquet_folder(spark, os.path.join(root, L.INDEX))
    previews = {split: [(_frame_image(root, frame), read_label_file(root, frame), frame["key"])
                        for frame in sample_frames(index, split, preview_frames, seed)]
                for split in numbers["per_frame"]}
    target = os.path.join(root, L.REPORT)
    try:
        with atomic_folder(target) as tmp:
            render(tmp, numbers, names, stats, previews, root)
    except OSError as exc:  # a full disk, a read-only folder: name what was being written
        raise StorageError(f"cannot write the report {target}: {describe_error(exc)}; nothing of it was "
                           "kept. Free space or fix the folder's permissions, then run `yololake report`") from None
    log.info("report: %s written after %.1fs", target, time.monotonic() - started)
    return target


def render(folder: str, numbers: dict, names: Sequence[str], stats: dict | None, previews: dict, where: str) -> None:
    """The charts, the preview mosaics (`previews`: split -> [(image, boxes, key)]) and index.html, into
    `folder`; `where` names the dataset on the page."""
    images = {
        "class histogram": D.plot_class_histogram(numbers["classes"], names, f"{folder}/class_histogram.png"),
        "box centres and sizes": D.plot_label_heatmaps(numbers["centres"], numbers["sizes"],
                                                       f"{folder}/label_heatmaps.png"),
        "boxes per frame": D.plot_boxes_per_frame(numbers["per_frame"], BOX_CAP, f"{folder}/boxes_per_frame.png"),
        "quarantine by reason": D.plot_quarantine(numbers["reasons"], f"{folder}/quarantine_reasons.png"),
    }
    for split, frames in previews.items():
        tiles = [(D.draw_boxes(image, boxes, names, max(1, round(image.shape[1] / 160))), key)
                 for image, boxes, key in frames]
        images[f"preview: {split}"] = D.plot_mosaic(tiles, f"{split}: {len(tiles)} random frames",
                                                    f"{folder}/preview_{split}.png")
    images = {title: os.path.basename(path) for title, path in images.items()}
    with open(os.path.join(folder, "index.html"), "w", encoding="utf-8") as f:
        f.write(render_index(where, stats or {}, numbers, images))


def _load_names(root: str) -> list[str]:
    """The dataset's class names; none (boxes labelled by class id) when its dataset.yaml cannot be read."""
    try:
        with open(os.path.join(root, L.DATASET_YAML), "rb") as f:
            return L.read_names(f.read())
    except (OSError, ValueError):
        return []


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="yololake report", description="render OUT/report/ for a built dataset")
    p.add_argument("out", help="the dataset folder (build-dataset's --out)")
    p.add_argument("--preview-frames", type=int, default=16, help="random frames per split in the previews (16)")
    p.add_argument("--seed", type=int, default=0, help="seed of the preview sample (0)")
    p.add_argument("--master", help="Spark master for in-process runs (default local[*]; spark-submit sets its own)")
    args = p.parse_args(argv)

    def body() -> int:
        if args.preview_frames < 0:
            raise UsageError(f"--preview-frames {args.preview_frames} must be 0 or more")
        if not os.path.isdir(os.path.join(current_folder(args.out), L.INDEX)):  # before Spark starts
            raise DatasetError(f"{args.out} has no index/ folder, so it is not a dataset written by yololake "
                               "build-dataset; pass the job's --out folder")
        # Under spark-submit the launcher provides the gateway and the master; in-process, default to all cores.
        master = args.master or (None if "PYSPARK_GATEWAY_PORT" in os.environ else "local[*]")
        spark = start_spark("yololake-report", master)
        print(f"report: {write_report(spark, args.out, args.preview_frames, args.seed)}/index.html")
        return 0

    return run_command("report", body)
