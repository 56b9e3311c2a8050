"""Benchmark: YOLOv5 dataset init with our prebuilt label cache vs YOLOv5's own scan, same dataset, same run.

    .venv/bin/python scripts/bench_label_cache.py [--frames 20000] [--dir /tmp/yololake_bench]

Generates a committed yololake dataset (one small JPEG repeated, labels, lists, index, manifests), then times
the train split:
  A) YOLOv5's LoadImagesAndLabels with no cache: it opens every image (its cache_labels scan);
  B) our prebuild (yololake.train.label_cache.build) + LoadImagesAndLabels reading that cache.
Prints both and the ratio A / B. Target: >= 10x.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image


def generate(root: str, frames: int, per_shard: int = 10_000, width: int = 128, height: int = 96) -> str:
    """A committed yololake dataset: 90% train, 10% val (at least 1); returns train.txt."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buf, "JPEG")
    jpeg = buf.getvalue()
    n_val = max(1, frames // 10)
    rows, lines = [], {"train": [], "val": []}
    for i in range(frames):
        split, j = ("train", i) if i < frames - n_val else ("val", i - (frames - n_val))
        shard, key = f"{j // per_shard:05d}", f"f{i:07d}"
        for kind in ("images", "labels"):
            os.makedirs(os.path.join(root, kind, split, shard), exist_ok=True)
        with open(os.path.join(root, "images", split, shard, f"{key}.jpg"), "wb") as f:
            f.write(jpeg)
        boxes = rng.random((int(rng.integers(0, 6)), 4)) * 0.4 + 0.3
        with open(os.path.join(root, "labels", split, shard, f"{key}.txt"), "w") as f:
            f.writelines(f"{rng.integers(0, 5)} {b[0]:.6f} {b[1]:.6f} {b[2] / 4:.6f} {b[3] / 4:.6f}\n" for b in boxes)
        rows.append((split, shard, key, "jpg", width, height))
        lines[split].append(f"./images/{split}/{shard}/{key}.jpg\n")
    for split, split_lines in lines.items():
        with open(os.path.join(root, f"{split}.txt"), "w") as f:
            f.writelines(split_lines)
    shards = []
    for split, shard in sorted({(r[0], r[1]) for r in rows}):
        folder = os.path.join(root, "labels", split, shard)
        digest, count = hashlib.sha256(), 0
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), "rb") as f:
                digest.update(f"{name[:-4]}\0".encode() + f.read() + b"\0")
            count += 1
        shards.append({"split": split, "shard": shard, "frames": count, "sha256": digest.hexdigest()})
    with open(os.path.join(root, "shards.json"), "w") as f:
        json.dump(shards, f)
    with open(os.path.join(root, "dataset.yaml"), "w") as f:
        f.write(f"path: {root}\ntrain: train.txt\nval: val.txt\nnc: 5\nnames: [a, b, c, d, e]\n")
    cols = list(zip(*rows))
    os.makedirs(os.path.join(root, "index"), exist_ok=True)
    pq.write_table(pa.table({"split": cols[0], "shard": cols[1], "key": cols[2], "ext": cols[3],
                             "width": pa.array(cols[4], pa.int32()), "height": pa.array(cols[5], pa.int32())}),
                   os.path.join(root, "index", "part-0.parquet"))
    with open(os.path.join(root, "_SUCCESS"), "w") as f:
        json.dump({"run_id": "bench", "frames": frames}, f)
    return os.path.join(root, "train.txt")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=22_300, help="frames in all; 90%% train (22300: 20070 train)")
    p.add_argument("--dir", default="/tmp/yololake_bench_cache")
    p.add_argument("--generate-only", action="store_true", help="write the dataset and stop (for gpu_check.sh)")
    p.add_argument("--size", default="128x96", help="image WIDTHxHEIGHT (128x96)")
    args = p.parse_args()
    width, height = map(int, args.size.split("x"))
    from yololake.train import label_cache, yolov5_env

    shutil.rmtree(args.dir, ignore_errors=True)
    t = time.perf_counter()
    list_file = generate(args.dir, args.frames, width=width, height=height)
    print(f"generated {args.frames} frames in {time.perf_counter() - t:.1f}s at {args.dir}")
    if args.generate_only:
        return 0
    os.environ["YOLOV5_CONFIG_DIR"] = yolov5_env.config_dir(args.dir)
    from yolov5.utils.dataloaders import NUM_THREADS, LoadImagesAndLabels

    cache = os.path.splitext(list_file)[0] + ".cache"
    t = time.perf_counter()
    LoadImagesAndLabels(list_file, img_size=640, batch_size=16, workers=8)  # no cache: YOLOv5 scans
    scan = time.perf_counter() - t
    os.remove(cache)
    t = time.perf_counter()
    summary = label_cache.build(list_file, args.dir, label_cache.read_index(args.dir))
    built = time.perf_counter() - t
    mtime = os.stat(cache).st_mtime_ns
    LoadImagesAndLabels(list_file, img_size=640, batch_size=16, workers=8)
    ours = time.perf_counter() - t
    assert os.stat(cache).st_mtime_ns == mtime, "YOLOv5 rejected the prebuilt cache and rescanned"
    n = summary["results"][4]
    print(f"train images: {n}; results {summary['results']}")
    print(f"A) YOLOv5 init, own scan ({NUM_THREADS} thread(s)):  {scan:8.2f}s")
    print(f"B) our prebuild:                         {built:8.2f}s")
    print(f"C) YOLOv5 init with the prebuilt cache:  {ours - built:8.2f}s")
    print(f"ratio A / (B + C) (first run):           {scan / ours:8.1f}x   (target >= 10x)")
    print(f"ratio A / C (cache already staged):      {scan / (ours - built):8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
