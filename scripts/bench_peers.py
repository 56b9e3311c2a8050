"""The programs scripts/bench_build.py times beside the job, each run as its own process:

    seed    the seed's pandas conversion (group by frame, iterrows, one label file per frame), as a user
            would otherwise run it
    peer    a vectorised single-machine script (polars, all cores): the job's conversion (sizes, class map,
            clip, 6-decimal lines, duplicates dropped, lines sorted, background frames) into the same
            label files (files layout: labels/<split>/<shard>/<key>.txt) or the same tars (shard_archive:
            labels/<split>/<shard>.tar), shards of 10,000 frames, written by one process per core
    floor   one process writing the job's label files again, their bytes already in memory

Every program prints one JSON line. `compare` reads a job's and a peer's output and counts the frames whose
labels differ, so the bench shows that the peer did the job's work.
"""
from __future__ import annotations

import io
import json
import os
import tarfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor

import bench_lake

NAMES = ("car", "truck", "pedestrian", "bicyclist", "light")
CLASS_IDS = {**{n: i for i, n in enumerate(NAMES)}, "person": NAMES.index("pedestrian")}
FRAMES_PER_SHARD = 10_000
SPLIT_RATIOS = (("train", 0.7), ("val", 0.2), ("test", 0.1))  # conf/demo.yaml's


# --- the seed --------------------------------------------------------------------------------------------

def seed(layout: str, lake: str, out: str) -> dict:
    """The seed's conversion, as a user would otherwise run it (sizes from the manifest, not hard-coded, on
    the parquet layout; the seed's 480x300 on its own CSVs)."""
    import pandas as pd

    if layout == "udacity":
        df = pd.concat([pd.read_csv(os.path.join(lake, f)).assign(split=f.split("_")[1].split(".")[0])
                        for f in bench_lake.UDACITY_FILES])
        df["width"], df["height"] = bench_lake.UDACITY_SIZE
        df["cls"], df["frame_id"] = df["class_id"] - 1, df["frame"].str.removesuffix(".jpg")
    else:
        ann = pd.read_parquet(os.path.join(lake, "annotations"))
        frames = pd.read_parquet(os.path.join(lake, "frames"))
        df = ann.merge(frames[["frame_id", "width", "height", "video_id"]], on="frame_id")
        df["cls"] = df["label"].map(CLASS_IDS)
        df["split"] = ["train" if zlib.crc32(str(v).encode()) % 10 < 8 else "val" for v in df["video_id"]]
    lists: dict[str, list[str]] = {}
    for (split, frame), group in df.groupby(["split", "frame_id"]):
        os.makedirs(os.path.join(out, "labels", split), exist_ok=True)
        lines = []
        for _, row in group.iterrows():
            w, h = row["width"], row["height"]
            cx, cy = (row["xmin"] + row["xmax"]) / 2 / w, (row["ymin"] + row["ymax"]) / 2 / h
            bw, bh = abs(row["xmax"] - row["xmin"]) / w, abs(row["ymax"] - row["ymin"]) / h
            lines.append(f"{row['cls']} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}\n")
        with open(os.path.join(out, "labels", split, f"{frame}.txt"), "w") as f:
            f.writelines(lines)
        lists.setdefault(split, []).append(f"./images/{split}/{frame}.jpg\n")
    for split, lines in lists.items():
        with open(os.path.join(out, f"{split}.txt"), "w") as f:
            f.writelines(lines)
    return {"frames": sum(map(len, lists.values()))}


# --- the vectorised peer ---------------------------------------------------------------------------------

def _round6(col):
    """round(x, 6), half away from zero on the binary value. Spark rounds the decimal text, so about one line
    in 300 differs from the job's by 1e-6 (`compare` counts them)."""
    return col.round(6, mode="half_away_from_zero")


def _micro_text(col):
    """A [0, 1] value as text with exactly 6 decimals, from integer micro-units (as the job writes it)."""
    import polars as pl

    micro = (col * 1_000_000).round(0, mode="half_away_from_zero").cast(pl.Int64)
    return pl.concat_str([(micro // 1_000_000).cast(pl.Utf8), pl.lit("."),
                          (micro % 1_000_000).cast(pl.Utf8).str.zfill(6)])


def _labels(layout: str, lake: str):
    """One row per frame: key, split, labels (sorted distinct lines, "" for a background frame)."""
    import polars as pl

    if layout == "udacity":
        ann = pl.concat([pl.scan_csv(os.path.join(lake, f)).with_columns(split=pl.lit(f.split("_")[1][:-4]))
                         for f in bench_lake.UDACITY_FILES])
        w, h = bench_lake.UDACITY_SIZE
        boxes = ann.with_columns(key=pl.col("frame").str.strip_suffix(".jpg"), cls=pl.col("class_id") - 1,
                                 width=pl.lit(w), height=pl.lit(h))
        frames = boxes.select("key", "split").unique("key")
    else:
        manifest = pl.scan_parquet(os.path.join(lake, "frames", "manifest.parquet"))
        unit = (pl.col("frame_id").hash(seed=0) % 1000) / 1000
        frames = manifest.select(pl.col("frame_id").alias("key"), split=pl.when(unit < 0.7).then(pl.lit("train"))
                                 .when(unit < 0.9).then(pl.lit("val")).otherwise(pl.lit("test")))
        boxes = (pl.scan_parquet(os.path.join(lake, "annotations", "**", "*.parquet"), hive_partitioning=True)
                 .join(manifest.select("frame_id", "width", "height"), on="frame_id")
                 .with_columns(key=pl.col("frame_id"), cls=pl.col("label").replace_strict(CLASS_IDS)))
    x1, x2 = (pl.min_horizontal("xmin", "xmax") / pl.col("width")).clip(0, 1), \
        (pl.max_horizontal("xmin", "xmax") / pl.col("width")).clip(0, 1)
    y1, y2 = (pl.min_horizontal("ymin", "ymax") / pl.col("height")).clip(0, 1), \
        (pl.max_horizontal("ymin", "ymax") / pl.col("height")).clip(0, 1)
    parts = ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)
    line = pl.concat_str([pl.col("cls").cast(pl.Utf8), *(_micro_text(_round6(v)) for v in parts)], separator=" ")
    per_frame = boxes.group_by("key").agg(labels=line.unique().sort().str.join("\n"))
    return (frames.join(per_frame, on="key", how="left").with_columns(pl.col("labels").fill_null(""))
            .sort("split", "key").collect())


def _write_shard(task: tuple) -> int:
    out, split, shard, keys, texts, archive = task
    if archive:
        os.makedirs(os.path.join(out, "labels", split), exist_ok=True)
        with tarfile.open(os.path.join(out, "labels", split, f"{shard}.tar"), "w", format=tarfile.USTAR_FORMAT) as tar:
            for key, text in zip(keys, texts):
                data = (text + "\n").encode() if text else b""
                info = tarfile.TarInfo(f"labels/{split}/{shard}/{key}.txt")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    else:
        folder = os.path.join(out, "labels", split, shard)
        os.makedirs(folder, exist_ok=True)
        for key, text in zip(keys, texts):
            with open(os.path.join(folder, f"{key}.txt"), "w") as f:
                f.write(text + "\n" if text else "")
    with open(os.path.join(out, f".{split}_{shard}.txt"), "w") as f:
        f.writelines(f"./images/{split}/{shard}/{key}.jpg\n" for key in keys)
    return len(keys)


def peer(layout: str, lake: str, out: str, archive: bool) -> dict:
    table = _labels(layout, lake)
    tasks = []
    for (split,), group in table.group_by("split", maintain_order=True):
        keys, texts = group["key"].to_list(), group["labels"].to_list()
        for n, start in enumerate(range(0, len(keys), FRAMES_PER_SHARD)):
            tasks.append((out, split, f"{n:05d}", keys[start:start + FRAMES_PER_SHARD],
                          texts[start:start + FRAMES_PER_SHARD], archive))
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        frames = sum(pool.map(_write_shard, tasks))
    for split in {t[1] for t in tasks}:  # list parts -> one list per split, as the job publishes them
        parts = sorted(p for p in os.listdir(out) if p.startswith(f".{split}_"))
        with open(os.path.join(out, f"{split}.txt"), "wb") as f:
            for part in parts:
                with open(os.path.join(out, part), "rb") as src:
                    f.write(src.read())
                os.remove(os.path.join(out, part))
    return {"frames": frames}


# --- the floor, and the comparison of two outputs ---------------------------------------------------------

def _label_files(dataset: str):
    """(relative folder, file name, bytes) of every label a job or the peer wrote, from files or shard tars."""
    from yololake.dataset.versions import current_folder

    labels = os.path.join(current_folder(dataset) if os.path.isdir(os.path.join(dataset, "versions"))
                          else dataset, "labels")
    for folder, _, files in os.walk(labels):
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith(".tar"):
                with tarfile.open(path) as tar:
                    for member in tar.getmembers():
                        yield os.path.dirname(member.name), os.path.basename(member.name), tar.extractfile(member).read()
            else:
                with open(path, "rb") as f:
                    yield os.path.relpath(folder, labels), name, f.read()


def floor(dataset: str, out: str) -> dict:
    """Load the job's label files (untimed), then time writing them again: the cost of the files alone."""
    texts = list(_label_files(dataset))
    started = time.monotonic()
    made = set()
    for rel, name, data in texts:
        folder = os.path.join(out, "labels", rel)
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    return {"seconds": time.monotonic() - started, "frames": len(texts)}


def compare(job_out: str, peer_out: str) -> dict:
    """How far the peer's labels are from the job's: frames missing on either side, frames whose text
    differs, and the largest difference of any number in them."""
    import numpy as np

    job = {name: data for _, name, data in _label_files(job_out)}
    peer = {name: data for _, name, data in _label_files(peer_out)}
    differ, worst = 0, 0.0
    for name in job.keys() & peer.keys():
        if job[name] != peer[name]:
            differ += 1
            a, b = (np.array(x.split(), dtype=float) for x in (job[name], peer[name]))
            worst = max(worst, float(np.abs(a - b).max())) if a.shape == b.shape else float("inf")
    return {"frames": len(job), "missing": len(job.keys() ^ peer.keys()), "differ": differ, "max_diff": worst}


def run_child(kind: str, layout: str, src: str, out: str) -> None:
    result = {"seed": lambda: seed(layout, src, out), "floor": lambda: floor(src, out),
              "peer": lambda: peer(layout, src, out, archive=False),
              "peer_archive": lambda: peer(layout, src, out, archive=True),
              "compare": lambda: compare(src, out)}[kind]()
    print(json.dumps(result))
