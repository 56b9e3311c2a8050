"""Benchmark: the job's image check, and the time to the first training step, on realistic JPEGs.

    .venv/bin/python scripts/bench_images.py [--images 100000] [--size 1280x720] [--repeats 3] [--parts a,b]
        [--s3-images 2000] [--master 'local[2]'] [--dir /tmp/yololake_bench_images] [--warm [--copies 10]]

Generates --images distinct JPEGs (gradients, noise and boxes: ~270 KB at 1280x720; every other one with an
EXIF block) and a Udacity-layout lake over them, then:
(a) images/s per core of the job's check (`image_facts.add_image_facts` in a Spark job over the URIs; and
    its code in one process) against YOLOv5's `verify_image_label` looped over the same files in one
    process; local disk, and moto S3 on 127.0.0.1 for the first --s3-images (YOLOv5 cannot read S3);
(b) seconds from the start of `yololake train` (caches prebuilt from the index) to YOLOv5's first loss line,
    against `python -m yolov5.train` with the same arguments scanning the images itself.
Page cache: each timed run starts cold, every image's pages dropped with posix_fadvise(DONTNEED) (no root
needed); --warm times warm runs instead.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import glob
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import s3fs
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
FIRST_STEP = re.compile(rb"\s0/\d+\s+[\d.]+G\s+\d")  # YOLOv5's progress line once batch 1 has a loss


def _make_chunk(job) -> list[list]:
    """Write images [start, stop): returns their annotation rows (frame, xmin, xmax, ymin, ymax, class_id)."""
    folder, start, stop, width, height = job
    rng = np.random.default_rng(start)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 255 // width), (y * 255 // height), ((x + y) * 127 // (width + height))], -1)
    noise = rng.integers(0, 28, (height, width, 3))
    rows = []
    for i in range(start, stop):
        pixels = (base + np.roll(noise, i * 37, axis=1) + i) % 256
        img = Image.fromarray(pixels.astype(np.uint8))
        draw = ImageDraw.Draw(img)
        name = f"{1_478_019_952_686_311_006 + i * 1_000_037}.jpg"
        for _ in range(int(rng.integers(1, 6))):
            bw, bh = int(rng.integers(20, width // 4)), int(rng.integers(20, height // 4))
            x1, y1 = int(rng.integers(0, width - bw)), int(rng.integers(0, height - bh))
            draw.rectangle([x1, y1, x1 + bw, y1 + bh], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
            rows.append([name, x1, x1 + bw, y1, y1 + bh, int(rng.integers(1, 6))])
        exif = Image.Exif()
        if i % 2:
            exif.update({0x010F: "Bench", 0x0110: "Cam 1", 0x0112: 1})
        img.save(os.path.join(folder, name), "JPEG", quality=85, exif=exif.tobytes())
    return rows


def make_lake(root: str, n: int, width: int, height: int) -> list[str]:
    """root/images/*.jpg and root/labels/labels_{train,val}.csv (every 10th frame in val); returns the images."""
    images, labels = os.path.join(root, "images"), os.path.join(root, "labels")
    if os.path.exists(os.path.join(labels, "labels_val.csv")):  # made by an earlier run
        return sorted(str(p) for p in Path(images).iterdir())
    os.makedirs(images, exist_ok=True)
    os.makedirs(labels, exist_ok=True)
    step = max(1, min(500, n // (4 * (os.cpu_count() or 1))))
    with Pool(os.cpu_count()) as pool:
        chunks = pool.map(_make_chunk, [(images, s, min(n, s + step), width, height) for s in range(0, n, step)])
    split = {"train": [], "val": []}
    for rows in chunks:
        for row in rows:
            split["val" if int(row[0][:-4]) % 10 == 6 else "train"].append(row)
    for name, rows in split.items():
        with open(os.path.join(labels, f"labels_{name}.csv"), "w", newline="") as f:
            csv.writer(f).writerows([["frame", "xmin", "xmax", "ymin", "ymax", "class_id"], *rows])
    return sorted(str(p) for p in Path(images).iterdir())


def drop_pages(files: list[str]) -> None:
    for path in files:
        with open(path, "rb") as f:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def timed(fn, files: list[str], repeats: int, cold: bool) -> list[float]:
    """Wall times of `repeats` runs after one untimed run (Python workers started, modules imported); cold:
    each timed run starts with the files' pages dropped."""
    fn()
    times = []
    for _ in range(repeats):
        if cold:
            drop_pages(files)
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def report(name: str, n: int, cores: int, times: list[float], overhead: float = 0.0) -> float:
    """Print and return images/s per core from the median run, less `overhead` (the same job reading nothing)."""
    rate = n / (statistics.median(times) - overhead) / cores
    print(f"  {name:48s} {rate:9,.0f} images/s/core   runs: {', '.join(f'{t:.2f}s' for t in times)}", flush=True)
    return rate


def part_a(args, files: list[str], cold: bool) -> None:
    from pyspark.sql import functions as F
    from yololake.build.image_facts import add_image_facts, check_images
    from yololake.config import StorageConfig
    from yololake.spark_session import start_spark
    from yololake.train import yolov5_env

    os.environ["YOLOV5_CONFIG_DIR"] = yolov5_env.config_dir(args.dir)
    from yolov5.utils.dataloaders import verify_image_label

    moto = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update({k: os.environ.get(k, v) for k, v in moto.items()})  # before the JVM: its workers inherit
    spark = start_spark("bench-images", args.master, {"spark.ui.enabled": "false"})
    cores = spark.sparkContext.defaultParallelism

    def spark_check(uris: list[str], storage: StorageConfig, skip: bool = False, decode: bool = False):
        """The job's check over `uris` (skip: the same job with every frame already flagged, so nothing is read)."""
        frames = spark.createDataFrame([(u,) for u in uris], "image_uri string").select(
            "image_uri", F.lit("skip" if skip else None).cast("string").alias("frame_reason"))
        frames = frames.repartition(cores * 4).persist()
        frames.count()
        # A new query each run: collect() again on the same DataFrame would reuse its shuffle files and skip
        # the stage that reads the images.
        return lambda: add_image_facts(frames, storage, decode).agg(
            F.count(F.lit(1)), F.count("image_reason")).collect()

    rows = files if cold else files * args.copies  # warm: each file read --copies times, for a longer run
    print(f"(a) image checks, {len(rows)} reads of {len(files)} JPEGs, Spark {args.master} ({cores} cores), "
          f"{'cold' if cold else 'warm'} page cache")
    fixed = statistics.median(timed(spark_check(rows, StorageConfig(), skip=True), [], args.repeats, False))
    print(f"  the same Spark job reading no image (its fixed cost): {fixed:.2f}s")
    wall = timed(spark_check(rows, StorageConfig()), files, args.repeats, cold)
    report("job's check (Spark, local disk), wall", len(rows), cores, wall)
    ours = report("job's check (Spark, local disk), less fixed cost", len(rows), cores, wall, fixed)
    single = report("job's check code in 1 process (a task's work)", len(rows), 1,
                    timed(lambda: check_images(rows, StorageConfig(), False), files, args.repeats, cold))
    theirs = report("YOLOv5 verify_image_label loop (1 process)", len(rows), 1,
                    timed(lambda: [verify_image_label((f, "/nonexistent.txt", "")) for f in rows], files,
                          args.repeats, cold))
    print(f"  ratio, local disk: Spark less fixed cost {ours / theirs:.1f}x, one process {single / theirs:.1f}x "
          "(goal >= 3x)")
    subset = files[:500]  # images.decode: a full decode of each image, for what it costs
    report(f"job's check with images.decode ({len(subset)} images)", len(subset), cores,
           timed(spark_check(subset, StorageConfig(), decode=True), subset, args.repeats, cold))
    if args.s3_images:
        with moto_server() as endpoint:
            subset = files[:args.s3_images]
            uris = upload(subset, endpoint)
            storage = StorageConfig(endpoint_url=endpoint)
            fixed = statistics.median(timed(spark_check(uris, storage, skip=True), [], args.repeats, False))
            report(f"job's check (Spark, moto S3, {len(subset)} images)", len(subset), cores,
                   timed(spark_check(uris, storage), [], args.repeats, False), fixed)
            report("moto's own pace: GET each object, 16 threads", len(subset), 1,
                   timed(lambda: fetch_all(uris, endpoint), [], args.repeats, False))
    spark.stop()


@contextlib.contextmanager
def moto_server():
    """A moto S3 server on a free loopback port, with a bucket `lake`: yields its endpoint."""
    import boto3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1",
                             "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="lake")
        yield endpoint
    finally:
        proc.terminate()
        proc.wait()


def upload(files: list[str], endpoint: str) -> list[str]:
    s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}).put(files, "lake/images/")
    return [f"s3://lake/images/{os.path.basename(f)}" for f in files]


def fetch_all(uris: list[str], endpoint: str) -> None:
    """Every object's bytes, 16 GETs at a time, nothing parsed: what the S3 server itself allows."""
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(fs.cat_file, uris))


def until_first_step(cmd: list[str], env: dict, log: str, first_step=FIRST_STEP) -> tuple[float, float]:
    """Seconds from starting `cmd` to the trainer's "Starting training" (its loaders built) and to its first loss
    line (`first_step`: YOLOv5's by default); the trainer is then stopped."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    seen, ready = b"", None
    with open(log, "wb") as out:
        while chunk := os.read(proc.stdout.fileno(), 65536):
            out.write(chunk)
            seen += chunk
            if ready is None and b"Starting training" in seen:
                ready = time.perf_counter() - started
            if ready is not None and first_step.search(seen.split(b"Starting training", 1)[1]):
                first = time.perf_counter() - started
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
                return ready, first
    raise RuntimeError(f"{' '.join(cmd[:4])}... exited ({proc.wait()}) before its first training step; see {log}")


def build_dataset(args, lake: str) -> str:
    from yololake.dataset.versions import current_folder

    out = os.path.join(args.dir, f"dataset-{os.path.basename(lake)}")
    if not os.path.exists(os.path.join(current_folder(out), "_SUCCESS")):  # a committed version: reused
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "yololake", "build-dataset", "--config", str(REPO / "conf/udacity.yaml"),
                        "--annotations", os.path.join(lake, "labels"), "--images", os.path.join(lake, "images"),
                        "--out", out, "--master", args.master, "--set", "image_size.width=0", "--set",
                        "image_size.height=0", "--set", "report.enabled=false"], check=True)
        print(f"(b) dataset built by the job in {time.perf_counter() - started:.1f}s: {out}")
    return out


def part_b(args, lake: str, files: list[str], cold: bool) -> None:
    from yololake.train import yolov5_env

    out = build_dataset(args, lake)
    stage_dir, project = os.path.join(args.dir, "stage"), os.path.join(args.dir, "runs")
    ours = [sys.executable, "-m", "yololake", "train", "--data", out, "--stage", "never", "--stage-dir", stage_dir,
            "--model", "yolov5n", "--epochs", "1", "--img", "320", "--batch-size", "8", "--device", "cpu",
            "--project", project, "--name", "ours", "--", "--workers", "1"]
    dry = subprocess.run([*ours[:-3], "--dry-run", *ours[-3:]], capture_output=True, text=True, check=True)
    theirs = dry.stdout.strip().splitlines()[-1].split()
    theirs[theirs.index("--data") + 1] = os.path.join(out, "dataset.yaml")  # its lists: no cache beside them
    theirs[theirs.index("--name") + 1] = "theirs"
    env = yolov5_env.offline_env(stage_dir)
    runs = {"yololake train, prebuilt caches": (ours, os.path.join(stage_dir, "*", "*.cache")),
            "python -m yolov5.train, its own scan": (theirs, os.path.join(out, "*.cache"))}
    print(f"(b) time to the first training step, {len(files)} images, {'cold' if cold else 'warm'} page cache")
    medians = []
    for name, (cmd, caches) in runs.items():
        times = []
        for attempt in range(args.repeats + (0 if cold else 1)):  # warm: one untimed run first
            for path in glob.glob(caches):
                os.remove(path)  # every run starts without a cache: ours prebuilds it, YOLOv5 scans
            if cold:
                drop_pages(files)
            ready, first = until_first_step(cmd, env, os.path.join(args.dir, f"{name.split()[0]}.log"))
            if cold or attempt:
                times.append((ready, first))
        medians.append(statistics.median(t[1] for t in times))
        built = statistics.median(t[0] for t in times)
        print(f"  {name:38s} first step {medians[-1]:6.1f}s, loaders built {built:6.1f}s   runs: "
              f"{', '.join(f'{r:.1f}/{f:.1f}s' for r, f in times)}", flush=True)
    print(f"  ratio: {medians[1] / medians[0]:.2f}x faster start (goal >= 10x)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=100_000)
    p.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of every JPEG (1280x720)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--parts", default="a,b", help="a (image checks), b (time to the first step) or both")
    p.add_argument("--s3-images", type=int, default=2000, help="images uploaded to moto for (a); 0: no S3 run")
    p.add_argument("--master", default="local[2]")
    p.add_argument("--dir", default="/tmp/yololake_bench_images")
    p.add_argument("--warm", action="store_true", help="time warm page-cache runs instead of cold ones")
    p.add_argument("--copies", type=int, default=10, help="warm (a): each file is checked this many times")
    args = p.parse_args()
    width, height = map(int, args.size.split("x"))
    lake = os.path.join(args.dir, f"lake-{args.images}-{args.size}")
    started = time.perf_counter()
    files = make_lake(lake, args.images, width, height)
    size = sum(os.path.getsize(f) for f in files) / len(files)
    print(f"lake: {len(files)} JPEGs {args.size}, {size / 1e3:.0f} KB average ({time.perf_counter() - started:.0f}s)")
    if "a" in args.parts:
        part_a(args, files, not args.warm)
    if "b" in args.parts:
        part_b(args, lake, files, not args.warm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
