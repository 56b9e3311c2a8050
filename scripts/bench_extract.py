"""Benchmark: extract-frames (local Spark, 2 cores) vs ffmpeg, sampling 1 fps from the same videos.

    .venv/bin/python scripts/bench_extract.py [--videos 6 --seconds 40 --runs 3 --work /tmp/bench_extract]

Generates 640x480 h264 videos (textured, so decoding costs what real footage costs), then times, median
of --runs each:
  ffmpeg      `ffmpeg -i V -vf fps=1 out/%06d.jpg` per video, two processes at a time (same parallelism)
  job         yololake.video.main.run in a warm local[2] session (the job itself)
  submit      spark-submit jobs/extract_frames.py --master local[2] (job + JVM and session start-up)
and prints the wall times and the ratios to ffmpeg. Not a test: nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def generate(folder: Path, n_videos: int, seconds: int) -> None:
    from yololake.samples.videos import write_video

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    texture = (rng.integers(0, 256, (480 // 8, 640 // 8, 3), dtype=np.uint8)
               .repeat(8, axis=0).repeat(8, axis=1))   # 8x8-pixel noise: real work for the codec
    for i in range(n_videos):
        path = folder / f"bench_{i:02d}.mp4"
        if not path.exists():
            write_video(str(path) + ".tmp.mp4", seconds * 30, 30, 640, 480, gop=60, texture=texture)
            os.replace(str(path) + ".tmp.mp4", path)


def run_ffmpeg(videos: list[Path], out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)

    def one(video: Path) -> None:
        target = out / video.stem
        target.mkdir(parents=True)
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(video), "-vf", "fps=1",
                        str(target / "%06d.jpg")], check=True)

    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, videos))
    return time.monotonic() - started


def run_submit(videos: Path, out: Path) -> float:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    started = time.monotonic()
    subprocess.run([str(ROOT / ".venv" / "bin" / "spark-submit"), "--master", "local[2]",
                    "--driver-java-options", f"-Dlog4j.configurationFile={ROOT / 'conf' / 'log4j2.properties'}",
                    str(ROOT / "jobs" / "extract_frames.py"), "--config", str(ROOT / "conf" / "extract_frames.yaml"),
                    "--videos", str(videos), "--out", str(out), "--fps", "1", "--overwrite"],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=6)
    p.add_argument("--seconds", type=int, default=40)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--work", default="/tmp/bench_extract")
    args = p.parse_args()
    if not shutil.which("ffmpeg"):
        print("bench_extract: ffmpeg is not installed (Debian: apt-get install -y ffmpeg)", file=sys.stderr)
        return 1
    work = Path(args.work)
    folder = work / "videos"
    t0 = time.monotonic()
    generate(folder, args.videos, args.seconds)
    videos = sorted(folder.glob("*.mp4"))
    print(f"{len(videos)} videos x {args.seconds} s of 640x480 at 30 fps "
          f"({len(videos) * args.seconds / 60:.1f} min; ready in {time.monotonic() - t0:.0f}s)")

    from yololake.spark_session import start_spark
    from yololake.video.config import load_extract_config
    from yololake.video.main import run

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    config = load_extract_config(ROOT / "conf" / "extract_frames.yaml", ["sampling.fps=1", "sampling.every_n=0"])
    spark = start_spark("bench-extract", "local[2]", {**config.spark, "spark.ui.enabled": "false"})
    times: dict[str, list[float]] = {"ffmpeg": [], "job": [], "submit": []}
    frames = {}
    for i in range(args.runs):
        times["ffmpeg"].append(run_ffmpeg(videos, work / "ffmpeg"))
        frames["ffmpeg"] = sum(1 for _ in (work / "ffmpeg").glob("*/*.jpg"))
        started = time.monotonic()
        frames["job"] = run(spark, config, str(folder), str(work / "job"), overwrite=True)["frames_written"]
        times["job"].append(time.monotonic() - started)
        print(f"  run {i + 1}: ffmpeg {times['ffmpeg'][-1]:.1f}s, job {times['job'][-1]:.1f}s", flush=True)
    spark.stop()
    for i in range(args.runs):
        times["submit"].append(run_submit(folder, work / "submit"))
        print(f"  run {i + 1}: spark-submit {times['submit'][-1]:.1f}s", flush=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nmedian of {args.runs} (1 fps; ffmpeg wrote {frames['ffmpeg']} frames, the job {frames['job']}):")
    print(f"  ffmpeg, 2 at a time        {med['ffmpeg']:7.1f}s   1.00x")
    print(f"  job, warm local[2] session {med['job']:7.1f}s   {med['job'] / med['ffmpeg']:.2f}x")
    print(f"  spark-submit local[2]      {med['submit']:7.1f}s   {med['submit'] / med['ffmpeg']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
