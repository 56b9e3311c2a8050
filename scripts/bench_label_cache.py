"""Benchmark: the trainer's dataset init with our prebuilt label cache vs its own scan, same dataset, same run.

    .venv/bin/python scripts/bench_label_cache.py [--trainer yolov5|ultralytics] [--frames 20000] [--dir DIR]
    .venv/bin/python scripts/bench_label_cache.py --first-step 5000 [--size 1280x720] [--repeats 3]

Generates a committed yololake dataset (one small JPEG repeated, labels, lists, index, manifests), then times
the train split:
  A) the trainer's dataset with no cache: it opens every image (YOLOv5's LoadImagesAndLabels, or ultralytics'
     YOLODataset: their cache_labels scans);
  B) our prebuild (label_cache.build, or ultralytics_cache.build) + the same dataset reading that cache.
Prints both and the ratio A / B. Target: >= 10x.

--first-step N: the ultralytics trainer, from launch to its first training step, on N realistic JPEGs (the
lake and the job-built dataset of scripts/bench_images.py): `yololake train --trainer ultralytics` (caches
prebuilt from the index) against ultralytics' own run (`-m yololake.train.ultralytics_run train` with the
same arguments on the dataset's own dataset.yaml, so it scans every image); cold page cache, medians.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from types import SimpleNamespace

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


def bench_yolov5(args, list_file: str) -> None:
    from yololake.train import label_cache, yolov5_env

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
    report("YOLOv5", NUM_THREADS, summary, scan, built, ours)


def bench_ultralytics(args, list_file: str, root: str = "", names=("a", "b", "c", "d", "e"), cold=None) -> None:
    """ultralytics' YOLODataset: its own scan, then our prebuild + the same dataset on it (`cold`: drop the
    images' pages before each)."""
    from yololake.train import label_cache, ultralytics_cache, yolov5_env

    os.environ.update(YOLO_OFFLINE="1", YOLO_CONFIG_DIR=os.path.join(args.dir, "ultralytics_config"))
    yolov5_env.copy_fonts(os.path.join(args.dir, "ultralytics_config", "Ultralytics"))
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.utils import NUM_THREADS

    names, root, cold = list(names), root or args.dir, cold or (lambda: None)

    def load():
        cold()
        return YOLODataset(img_path=list_file, data={"names": dict(enumerate(names)), "channels": 3}, imgsz=640,
                           augment=False, task="detect")

    cache = os.path.dirname(label_cache.label_path(label_cache.list_images(list_file)[0])) + ".cache"
    if os.path.exists(cache):
        os.remove(cache)  # left by an earlier run
    t = time.perf_counter()
    load()  # no cache: ultralytics scans
    scan = time.perf_counter() - t
    os.remove(cache)
    t = time.perf_counter()
    summary = ultralytics_cache.build(list_file, root, label_cache.read_index(root), names)
    built = time.perf_counter() - t
    mtime = os.stat(cache).st_mtime_ns
    load()
    ours = time.perf_counter() - t
    assert os.stat(cache).st_mtime_ns == mtime, "ultralytics rejected the prebuilt cache and rescanned"
    report(f"ultralytics {ultralytics_cache.installed_version()[0]}", NUM_THREADS, summary, scan, built, ours)


def report(trainer: str, threads: int, summary: dict, scan: float, built: float, ours: float) -> None:
    print(f"train images: {summary['results'][4]}; results {summary['results']}")
    print(f"A) {trainer} init, own scan ({threads} thread(s)):  {scan:8.2f}s")
    print(f"B) our prebuild:                         {built:8.2f}s")
    print(f"C) {trainer} init with the prebuilt cache:  {ours - built:8.2f}s")
    print(f"ratio A / (B + C) (first run):           {scan / ours:8.1f}x   (target >= 10x)")
    print(f"ratio A / C (cache already staged):      {scan / (ours - built):8.1f}x")


ULTRALYTICS_FIRST_STEP = re.compile(rb"\d+/\d+\s+[\d.]+G\s+\d+\.\d+")  # its progress line once batch 1 has a loss


def bench_first_step(args) -> None:
    """ultralytics from launch to its first training step: prebuilt caches vs its own scan (realistic JPEGs)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_images
    from yololake.dataset.layout import read_names
    from yololake.dataset.versions import current_folder
    from yololake.train import yolov5_env

    width, height = map(int, args.size.split("x"))
    lake = os.path.join(args.dir, f"lake-{args.first_step}-{args.size}")
    files = bench_images.make_lake(lake, args.first_step, width, height)
    out = bench_images.build_dataset(SimpleNamespace(dir=args.dir, master="local[2]"), lake)
    stage_dir, project = os.path.join(args.dir, "stage"), os.path.join(args.dir, "runs")
    ours = [sys.executable, "-m", "yololake", "train", "--trainer", "ultralytics", "--data", out, "--stage", "never",
            "--stage-dir", stage_dir, "--model", "yolov8n.yaml", "--epochs", "1", "--img", "320", "--batch-size", "8",
            "--device", "cpu", "--project", project, "--name", "ours"]
    theirs = subprocess.run([*ours, "--dry-run"], capture_output=True, text=True, check=True).stdout.split("\n")[-2]
    version = current_folder(out)
    theirs = [f"data={version}/dataset.yaml" if a.startswith("data=") else "name=theirs" if a.startswith("name=")
              else a for a in theirs.split()]
    print(f"dataset init, train split of {len(files)} images {args.size}, cold page cache")
    os.makedirs(args.dir, exist_ok=True)
    with open(os.path.join(version, "dataset.yaml"), encoding="utf-8") as f:
        names = read_names(f.read())
    bench_ultralytics(args, os.path.join(version, "train.txt"), version, names,
                      lambda: bench_images.drop_pages(files))
    env = yolov5_env.offline_env(stage_dir)
    runs = {"yololake train --trainer ultralytics": (ours, f"{stage_dir}/*-inplace-ultralytics/labels/*/*.cache"),
            "ultralytics, its own scan": (theirs, f"{version}/labels/*/*.cache")}
    if not args.repeats:
        return
    print(f"time to the first training step, {len(files)} images {args.size}, cold page cache")
    medians = []
    for name, (cmd, caches) in runs.items():
        times = []
        for _ in range(args.repeats):
            for path in glob.glob(caches):
                os.remove(path)  # every run starts without a cache: ours prebuilds it, ultralytics scans
            bench_images.drop_pages(files)
            times.append(bench_images.until_first_step(cmd, env, os.path.join(args.dir, f"{name[:5]}.log"),
                                                       ULTRALYTICS_FIRST_STEP))
        medians.append(statistics.median(t[1] for t in times))
        print(f"  {name:38s} first step {medians[-1]:6.1f}s, loaders built "
              f"{statistics.median(t[0] for t in times):6.1f}s   runs: "
              f"{', '.join(f'{r:.1f}/{f:.1f}s' for r, f in times)}", flush=True)
    print(f"  ratio: {medians[1] / medians[0]:.2f}x faster start (goal >= 10x)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=22_300, help="frames in all; 90%% train (22300: 20070 train)")
    p.add_argument("--dir", default="/tmp/yololake_bench_cache")
    p.add_argument("--generate-only", action="store_true", help="write the dataset and stop (for gpu_check.sh)")
    p.add_argument("--size", default="128x96", help="image WIDTHxHEIGHT (128x96; --first-step: 1280x720)")
    p.add_argument("--trainer", choices=("yolov5", "ultralytics"), default="yolov5")
    p.add_argument("--first-step", type=int, default=0, help="N realistic JPEGs: ultralytics' time to its first step")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.first_step:
        args.size = "1280x720" if args.size == "128x96" else args.size
        bench_first_step(args)
        return 0
    width, height = map(int, args.size.split("x"))
    shutil.rmtree(args.dir, ignore_errors=True)
    t = time.perf_counter()
    list_file = generate(args.dir, args.frames, width=width, height=height)
    print(f"generated {args.frames} frames in {time.perf_counter() - t:.1f}s at {args.dir}")
    if not args.generate_only:
        (bench_ultralytics if args.trainer == "ultralytics" else bench_yolov5)(args, list_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
