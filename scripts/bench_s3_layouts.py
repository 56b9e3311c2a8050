"""Object count and wall time of both output layouts against S3 on 127.0.0.1 (a moto server).

    .venv/bin/python scripts/bench_s3_layouts.py [--videos 12 --frames-per-video 10] [--repeats 3]

Generates the sample lake, starts `moto_server` on a free loopback port, runs the build job into
s3:// once per layout and repeat (images copied), and prints objects and median wall time per layout.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=12)
    p.add_argument("--frames-per-video", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    import boto3
    import s3fs
    from yololake.samples.lake import generate

    work = tempfile.mkdtemp(prefix="yololake-s3-bench-")
    lake = os.path.join(work, "lake")
    generate(lake, args.videos, args.frames_per_video)
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": endpoint, "PYSPARK_PYTHON": sys.executable}
    server = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1",
                               "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                     aws_secret_access_key="bench").create_bucket(Bucket="lake")
        fs = s3fs.S3FileSystem(key="bench", secret="bench", client_kwargs={"endpoint_url": endpoint})
        layouts = {"files": [], "shard_archive": ["--set", "output.layout=shard_archive",
                                                   "--set", "output.archive_images=true"]}
        print(f"lake: {lake}; S3: moto on {endpoint}")
        print(f"{'layout':15s} {'objects':>8s} {'frames':>7s} {'median s':>9s}  runs")
        for layout, extra in layouts.items():
            times, objects = [], 0
            for i in range(args.repeats):
                out = f"s3://lake/bench/{layout}/{i}"
                cmd = [sys.executable, "-m", "yololake", "build-dataset", "--config", str(REPO / "conf" / "demo.yaml"),
                       "--annotations", f"{lake}/annotations", "--frames", f"{lake}/frames", "--images", lake,
                       "--out", out, "--master", "local[2]", "--set", "images.mode=copy", *extra]
                started = time.monotonic()
                subprocess.run(cmd, env=env, check=True, capture_output=True)
                times.append(time.monotonic() - started)
                objects = len(fs.find(out.removeprefix("s3://")))
            frames = args.videos * args.frames_per_video
            print(f"{layout:15s} {objects:8d} {frames:7d} {statistics.median(times):9.1f}  "
                  + " ".join(f"{t:.1f}" for t in times))
    finally:
        server.terminate()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
