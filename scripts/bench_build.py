"""Benchmark the build-dataset job against the seed's pandas script and the file-write floor.

    .venv/bin/python scripts/bench_build.py [--sizes 100000,1000000] [--repeats 3] [--work DIR]

For each size N: generate a lake of N frames (scripts/bench_lake.py, ~6 boxes per frame, no images),
then run, each --repeats times (medians are printed):
  job       spark-submit jobs/build_dataset.py on local[*] (conf/demo.yaml, images.mode none, split by frame id)
  baseline  the seed's pandas conversion: group by frame, iterrows, one label file per frame
  floor     one process writing the job's label files, their text already in memory
Peak memory is sampled (RSS, every 0.1 s) over the process tree: "driver" = the JVM and the Python
driver, "job" = everything, Python workers included.

Every run writes into a new folder (<program>_<N>_run<k> under --work; about 4 GB per 1M-frame output):
on a virtual disk mounted with `discard`, deleting a million files slows file creation for minutes
afterwards, and the job's --overwrite would time that deletion. Before each timed program the bench
syncs and waits until a probe of 2,000 file creations runs at the disk's quiet speed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib

import bench_lake
import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
NAMES = ("car", "truck", "pedestrian", "bicyclist", "light")
CLASS_IDS = {**{n: i for i, n in enumerate(NAMES)}, "person": NAMES.index("pedestrian")}
PROGRAMS = ("job", "baseline", "floor")
PROBES = ".disk_probes"
WORKER_MARKERS = ("pyspark.daemon", "pyspark/daemon.py", "pyspark.worker", "pyspark/worker.py")


def _is_worker(proc: psutil.Process) -> bool:
    try:
        return any(m in " ".join(proc.cmdline()) for m in WORKER_MARKERS)
    except psutil.Error:
        return False


def measure(cmd: list[str], env: dict | None = None, cwd: str = ROOT) -> dict:
    """Run `cmd`; return wall seconds, peak RSS (MB) of the non-worker processes and of the whole tree, stdout."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    peaks = {"driver": 0, "total": 0}
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(proc.pid)
        workers: dict[int, bool] = {}  # cmdline lookups are slow: classify each pid once
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            driver = total = 0
            for p in tree:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                if p.pid not in workers:
                    workers[p.pid] = _is_worker(p)
                total += rss
                driver += 0 if workers[p.pid] else rss
            peaks["driver"], peaks["total"] = max(peaks["driver"], driver), max(peaks["total"], total)
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd[:4])}... failed (exit {proc.returncode}):\n{err[-3000:]}")
    return {"wall": wall, "driver_mb": peaks["driver"] / 2**20, "total_mb": peaks["total"] / 2**20, "stdout": out}


def settle_disk(work: str, timeout: float = 300.0, fast_s: float = 0.25) -> float:
    """Sync, then wait until creating 2,000 small files takes under `fast_s` twice in a row (this disk
    does it in 0.06-0.08 s when quiet); return the seconds waited."""
    started = time.monotonic()
    os.sync()
    fast = 0
    while fast < 2 and time.monotonic() - started < timeout:
        # New files each time (creation is what gets slow), kept until the end: deleting them would slow it
        probe = tempfile.mkdtemp(dir=os.path.join(work, PROBES))
        t = time.monotonic()
        for i in range(2000):
            with open(os.path.join(probe, f"{i}.txt"), "wb") as f:
                f.write(b"0 0.5 0.5 0.1 0.1\n")
        fast = fast + 1 if time.monotonic() - t <= fast_s else 0
        if fast < 2:
            time.sleep(1)
    waited = time.monotonic() - started
    if waited > 10:
        print(f"  (waited {waited:.0f} s for the disk to settle)", flush=True)
    return waited


def fresh(path: str, work: str, settle_s: float) -> str:
    """An empty output folder (each run writes a new one: deleting many files slows this disk for minutes),
    then sync and let the disk settle for at most `settle_s`, all untimed."""
    if os.path.exists(path):
        shutil.rmtree(path)
    settle_disk(work, timeout=settle_s)
    return path


def run_job(lake: str, out: str, master: str, event_log: str | None, lib: str | None,
            job_set: tuple[str, ...] = ()) -> dict:
    env = {**os.environ, "PYSPARK_PYTHON": PY, "PYSPARK_DRIVER_PYTHON": PY}
    if lib:  # bench another checkout's yololake (ahead of the editable install) on driver and workers
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.abspath(lib), env.get("PYTHONPATH")]))
    conf = ["--conf", "spark.ui.enabled=false"]
    if event_log:
        os.makedirs(event_log, exist_ok=True)
        conf = ["--conf", "spark.eventLog.enabled=true", "--conf", "spark.eventLog.compress=false",
                "--conf", f"spark.eventLog.dir={event_log}"]
    cmd = [os.path.join(os.path.dirname(PY), "spark-submit"), "--master", master,
           "--driver-java-options", f"-Dlog4j.configurationFile={ROOT}/conf/log4j2.properties", *conf,
           os.path.join(ROOT, "jobs", "build_dataset.py"), "--config", os.path.join(ROOT, "conf", "demo.yaml"),
           "--annotations", f"{lake}/annotations", "--frames", f"{lake}/frames", "--images", lake,
           "--out", out, "--force", "--set", "images.mode=none", "--set", "images.check_exists=false",
           # split by frame: a tiny lake has 1-3 videos, all of which may hash away from train, which the job
           # refuses (nothing to train on); at bench sizes the split's cost is the same either way
           "--set", "split.column=frame_id",
           *[arg for item in job_set for arg in ("--set", item)]]
    result = measure(cmd, env)
    from yololake.dataset.versions import current_folder

    with open(os.path.join(current_folder(out), "stats.json"), encoding="utf-8") as f:
        stats = json.load(f)
    result["in_job"], result["frames"] = stats["wall_seconds"], stats["frames_written"]
    return result


def baseline(lake: str, out: str) -> None:
    """The seed's conversion, as a user would otherwise run it (sizes from the manifest, not hard-coded)."""
    import pandas as pd

    ann = pd.read_parquet(os.path.join(lake, "annotations"))
    frames = pd.read_parquet(os.path.join(lake, "frames"))
    df = ann.merge(frames[["frame_id", "width", "height", "video_id"]], on="frame_id")
    lists: dict[str, list[str]] = {"train": [], "val": []}
    for split in lists:
        os.makedirs(os.path.join(out, "labels", split), exist_ok=True)
    for frame, group in df.groupby("frame_id"):
        split = "train" if zlib.crc32(str(group["video_id"].iloc[0]).encode()) % 10 < 8 else "val"
        lines = []
        for _, row in group.iterrows():
            w, h = row["width"], row["height"]
            cx, cy = (row["xmin"] + row["xmax"]) / 2 / w, (row["ymin"] + row["ymax"]) / 2 / h
            bw, bh = abs(row["xmax"] - row["xmin"]) / w, abs(row["ymax"] - row["ymin"]) / h
            lines.append(f"{CLASS_IDS[row['label']]} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}\n")
        with open(os.path.join(out, "labels", split, f"{frame}.txt"), "w") as f:
            f.writelines(lines)
        lists[split].append(f"./images/{split}/{frame}.jpg\n")
    for split, lines in lists.items():
        with open(os.path.join(out, f"{split}.txt"), "w") as f:
            f.writelines(lines)
    print(json.dumps({"frames": sum(map(len, lists.values()))}))


def floor(dataset: str, out: str) -> None:
    """Load the job's label files (untimed), then time writing them again: the cost of the files alone."""
    from yololake.dataset.versions import current_folder

    texts = []
    labels = os.path.join(current_folder(dataset), "labels")
    for folder, _, files in os.walk(labels):
        rel = os.path.relpath(folder, labels)
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                texts.append((rel, name, f.read()))
    started = time.monotonic()
    made = set()
    for rel, name, data in texts:
        folder = os.path.join(out, "labels", rel)
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    print(json.dumps({"seconds": time.monotonic() - started, "files": len(texts)}))


def bench_size(n: int, repeats: int, work: str, master: str, event_log: str | None, lib: str | None,
               job_set: tuple[str, ...] = (), programs: tuple[str, ...] = PROGRAMS,
               settle_s: float = 300.0) -> dict:
    lake = os.path.join(work, f"lake_{n}")
    if not os.path.exists(os.path.join(lake, "frames", "manifest.parquet")):
        shutil.rmtree(lake, ignore_errors=True)
        info = bench_lake.generate(lake, n)
        print(f"[{n}] generated lake: {info['frames']} frames, {info['rows']} boxes", flush=True)
    runs: dict[str, list[dict]] = {kind: [] for kind in PROGRAMS if kind in programs}
    for r in range(repeats):
        job_out, base_out, floor_out = (os.path.join(work, f"{kind}_{n}_run{r + 1}") for kind in PROGRAMS)
        runs["job"].append(run_job(lake, fresh(job_out, work, settle_s), master, event_log if r == 0 else None,
                                   lib, job_set))
        if "baseline" in runs:
            m = measure([PY, __file__, "--child", "baseline", lake, fresh(base_out, work, settle_s)])
            m["frames"] = json.loads(m["stdout"].strip().splitlines()[-1])["frames"]
            runs["baseline"].append(m)
        if "floor" in runs:
            m = measure([PY, __file__, "--child", "floor", job_out, fresh(floor_out, work, settle_s)])
            done = json.loads(m["stdout"].strip().splitlines()[-1])
            m["wall"], m["frames"] = done["seconds"], done["files"]
            runs["floor"].append(m)
        print(f"[{n}] run {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]['wall']:.1f}s" for k, v in runs.items()),
              flush=True)
    result = {kind: {key: statistics.median(m[key] for m in ms) for key in ("wall", "driver_mb", "total_mb")}
              for kind, ms in runs.items()}
    result["job"]["in_job"] = statistics.median(m["in_job"] for m in runs["job"])
    for kind, ms in runs.items():
        result[kind]["frames"] = ms[-1]["frames"]
        result[kind]["runs"] = [round(m["wall"], 1) for m in ms]
    return result


LABELS = {"job": "job (spark-submit)", "baseline": "baseline (pandas)", "floor": "floor (write only)"}


def report(results: dict[int, dict], repeats: int) -> str:
    lines = []
    for n, r in results.items():
        lines.append(f"N={n} frames, median of {repeats} run(s)")
        for kind, m in r.items():
            lines.append(f"  {LABELS[kind]:20s} wall {m['wall']:9.3f} s  frames/s {n / m['wall']:9.0f}  "
                         f"driver peak {m['driver_mb']:7.0f} MB  job peak {m['total_mb']:7.0f} MB  "
                         f"runs {', '.join(f'{w:.1f}' for w in m['runs'])}")
        job = r["job"]
        lines.append(f"  job wall inside Spark (stats.json wall_seconds) {job['in_job']:.1f} s")
        written = ", ".join(f"{kind} {m['frames']}" + (" (annotated frames only)" if kind == "baseline" else "")
                            for kind, m in r.items())
        lines.append(f"  label files written: {written}")
        ratios = [f"ratio job/{kind} {job['wall'] / r[kind]['wall']:.3f} (target <= {target})"
                  for kind, target in (("baseline", 0.1), ("floor", 2)) if kind in r]
        if ratios:
            lines.append("  " + "   ".join(ratios))
    sizes = sorted(results)
    if len(sizes) >= 2:
        small, big = results[sizes[0]]["job"], results[sizes[-1]]["job"]
        lines.append(f"ratio {sizes[-1]}/{sizes[0]}: job wall {big['wall'] / small['wall']:.2f} "
                     f"(linear: {sizes[-1] / sizes[0]:.0f}, target <= 1.1x linear), "
                     f"driver peak {big['driver_mb'] / small['driver_mb']:.2f} (target <= 1.2)")
    else:
        lines.append(f"ratio largest/smallest: n/a (one size: {sizes[0]})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="100000,1000000", help="comma-separated frame counts")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--work", help="folder for lakes and outputs (kept; default: a temporary folder, removed)")
    p.add_argument("--master", default="local[*]")
    p.add_argument("--event-log", help="write the Spark event log of each size's first job run here (profiling)")
    p.add_argument("--lib", help="source root of the yololake to bench (e.g. a snapshot's lib/); default: installed")
    p.add_argument("--job-set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra --set for the job, e.g. output.layout=shard_archive")
    p.add_argument("--programs", default=",".join(PROGRAMS),
                   help="which to run, comma-separated (the job always runs; the floor rewrites its files)")
    p.add_argument("--settle", type=float, default=300.0, metavar="SECONDS",
                   help="longest wait for the disk to be quiet before each timed program (0: no wait)")
    p.add_argument("--child", nargs=3, metavar=("KIND", "IN", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        kind, src, out = args.child
        (baseline if kind == "baseline" else floor)(src, out)
        return 0
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        p.error(f"--sizes {args.sizes!r}: expected comma-separated whole numbers, e.g. 100000,1000000")
    if not sizes or min(sizes) < 1 or args.repeats < 1:
        p.error("--sizes needs positive frame counts and --repeats at least 1")
    programs = tuple(x.strip() for x in args.programs.split(",") if x.strip())
    if not set(programs) <= set(PROGRAMS):
        p.error(f"--programs {args.programs!r}: choose from {', '.join(PROGRAMS)}")
    work = args.work or tempfile.mkdtemp(prefix="yololake-bench-")
    os.makedirs(os.path.join(work, PROBES), exist_ok=True)
    try:
        results = {n: bench_size(n, args.repeats, work, args.master, args.event_log, args.lib,
                                tuple(args.job_set), programs, args.settle) for n in sizes}
    finally:
        shutil.rmtree(work if not args.work else os.path.join(work, PROBES), ignore_errors=True)
    cpu = f"{psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM"
    print(f"\nmachine: {cpu}; master {args.master}; job --set {' '.join(args.job_set) or '(defaults)'}")
    print(report(results, args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
