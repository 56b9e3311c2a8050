"""Benchmark the build-dataset job side by side with a vectorised peer, the seed's script and the write floor.

    .venv/bin/python scripts/bench_build.py [--sizes 100000,1000000] [--repeats 3] [--work DIR]
        [--layout parquet|udacity] [--job-set output.layout=shard_archive] [--base-lib OLD/lib]

For each size N: generate a lake of N frames (scripts/bench_lake.py, ~6 boxes per frame, no images; the
parquet layout of conf/demo.yaml, or the seed's own Udacity CSVs read through conf/udacity.yaml), then run,
each --repeats times, in turn (medians are printed, with job/peer, job/seed and job/floor):
  job       spark-submit jobs/build_dataset.py on --master (images.mode none, images.check_exists false)
  base      the same from another checkout (--base-lib), to measure a change side by side
  peer      polars on all cores: the same conversion into the same label files or tars (scripts/bench_peers.py);
            at sizes up to --verify-max the bench checks it wrote exactly the job's labels
  seed      the seed's pandas conversion: group by frame, iterrows, one label file per frame
  floor     one process writing the job's label files, their text already in memory
Peak memory is sampled (RSS, every 0.1 s) over the process tree: "driver" = the JVM and the Python
driver, "job" = everything, Python workers included.

Every run writes a new folder (<program>_<layout>_<N>_run<k> under --work; ~4 GB per 1M frames): deleting
many files slows this disk for minutes. Before each program the bench waits for the disk to be quiet.
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

import bench_lake
import bench_peers
import psutil
from yololake import jvm_archive

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
PROGRAMS = ("job", "base", "peer", "seed", "floor")
LABELS = {"job": "job (spark-submit)", "base": "job at --base-lib", "peer": "peer (polars, all cores)",
          "seed": "seed (pandas iterrows)", "floor": "floor (write only)"}
TARGETS = {"seed": 0.1, "peer": 1.5, "floor": 1.5}
PROBES = ".disk_probes"
WORKER_MARKERS = ("pyspark.daemon", "pyspark/daemon.py", "pyspark.worker", "pyspark/worker.py")


def _is_worker(proc: psutil.Process) -> bool:
    try:
        return any(m in " ".join(proc.cmdline()) for m in WORKER_MARKERS)
    except psutil.Error:
        return False


def measure(cmd: list[str], env: dict | None = None, cwd: str = ROOT) -> dict:
    """Run `cmd`; return wall seconds, CPU seconds of every process in its tree (sampled every 0.1 s, so up to
    0.1 s of each process's last moments is missed), peak RSS (MB) of the process itself (own), of the
    non-worker processes (driver) and of the whole tree (total), stdout."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    peaks = {"own": 0, "driver": 0, "total": 0}
    cpu: dict[int, float] = {}  # pid -> its own CPU seconds when last seen (Spark's Python workers included)
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(proc.pid)
        workers: dict[int, bool] = {}  # cmdline lookups are slow: classify each pid once
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            own = driver = total = 0
            for p in tree:
                try:
                    rss = p.memory_info().rss
                    times = p.cpu_times()
                except psutil.Error:
                    continue
                cpu[p.pid] = times.user + times.system
                if p.pid not in workers:
                    workers[p.pid] = _is_worker(p)
                total += rss
                driver += 0 if workers[p.pid] else rss
                own = rss if p is root else own
            for key, value in (("own", own), ("driver", driver), ("total", total)):
                peaks[key] = max(peaks[key], value)
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd[:4])}... failed (exit {proc.returncode}):\n{err[-3000:]}")
    return {"wall": wall, "cpu": sum(cpu.values()), "own_mb": peaks["own"] / 2**20,
            "driver_mb": peaks["driver"] / 2**20, "total_mb": peaks["total"] / 2**20, "stdout": out}


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
    return time.monotonic() - started


def fresh(path: str, work: str, settle_s: float) -> str:
    """An empty output folder (each run writes a new one: deleting many files slows this disk for minutes),
    then sync and let the disk settle for at most `settle_s`, all untimed."""
    if os.path.exists(path):
        shutil.rmtree(path)
    settle_disk(work, timeout=settle_s)
    return path


def job_command(layout: str, lake: str, out: str, root: str, job_set: tuple[str, ...]) -> list[str]:
    """The build-dataset arguments for a bench lake: no images (none to read), split by frame id on the
    parquet layout (a tiny lake has 1-3 videos, which may all hash away from train), by file on Udacity's."""
    if layout == "udacity":
        inputs = ["--config", os.path.join(root, "conf", "udacity.yaml"), "--annotations", lake, "--images", lake]
    else:
        inputs = ["--config", os.path.join(root, "conf", "demo.yaml"), "--annotations", f"{lake}/annotations",
                  "--frames", f"{lake}/frames", "--images", lake, "--set", "split.column=frame_id"]
    return [os.path.join(root, "jobs", "build_dataset.py"), *inputs, "--out", out, "--force",
            "--set", "images.mode=none", "--set", "images.check_exists=false",
            *[arg for item in job_set for arg in ("--set", item)]]


def run_job(layout: str, lake: str, out: str, master: str, event_log: str | None, lib: str | None,
            job_set: tuple[str, ...] = (), java_options: tuple[str, ...] = ()) -> dict:
    env = {**os.environ, "PYSPARK_PYTHON": PY, "PYSPARK_DRIVER_PYTHON": PY}
    root = ROOT
    if lib:  # bench another checkout's yololake (ahead of the editable install), its jobs/ and conf/ too
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.abspath(lib), env.get("PYTHONPATH")]))
        root = os.path.dirname(os.path.abspath(lib))
    conf = ["--conf", "spark.ui.enabled=false"]
    if event_log:
        os.makedirs(event_log, exist_ok=True)
        conf += ["--conf", "spark.eventLog.enabled=true", "--conf", "spark.eventLog.compress=false",
                 "--conf", f"spark.eventLog.dir={event_log}"]
    cmd = [os.path.join(os.path.dirname(PY), "spark-submit"), "--master", master,
           "--driver-java-options", " ".join([f"-Dlog4j.configurationFile={ROOT}/conf/log4j2.properties",
                                              *java_options]), *conf,
           *job_command(layout, lake, out, root, job_set)]
    result = measure(cmd, env)
    from yololake.dataset.versions import current_folder

    with open(os.path.join(current_folder(out), "stats.json"), encoding="utf-8") as f:
        stats = json.load(f)
    result["in_job"], result["frames"] = stats["wall_seconds"], stats["frames_written"]
    return result


def child(kind: str, layout: str, src: str, out: str) -> dict:
    m = measure([PY, __file__, "--layout", layout, "--child", kind, src, out])
    done = json.loads(m["stdout"].strip().splitlines()[-1])
    m["wall"] = done.get("seconds", m["wall"])  # the floor times its writes only
    return {**m, **{k: v for k, v in done.items() if k != "seconds"}}


def lake_for(n: int, layout: str, work: str) -> str:
    lake = os.path.join(work, f"lake_{layout}_{n}")
    marker = os.path.join(lake, ".complete")
    if not os.path.exists(marker):
        shutil.rmtree(lake, ignore_errors=True)
        info = (bench_lake.generate if layout == "parquet" else bench_lake.generate_udacity)(lake, n)
        open(marker, "w").close()
        print(f"[{n}] generated {layout} lake: {info['frames']} frames, {info['rows']} boxes", flush=True)
    return lake


def bench_size(n: int, args: argparse.Namespace, programs: tuple[str, ...], work: str) -> dict:
    lake = lake_for(n, args.layout, work)
    job_set = tuple(args.job_set)
    peer = "peer_archive" if "output.layout=shard_archive" in job_set else "peer"
    runs: dict[str, list[dict]] = {kind: [] for kind in programs}
    # The job starts as the README says (local runs: the class archive, `yololake jvm-archive`); the base
    # program runs as its own commit did, so an A/B with --base-lib of this very lib/ measures these options.
    java_options = () if args.plain_jvm else tuple(jvm_archive.java_options())
    for r in range(args.repeats):
        outs = {kind: fresh(os.path.join(work, f"{kind}_{args.layout}_{n}_run{r + 1}"), work, args.settle)
                for kind in runs}
        for kind in runs:
            if kind in ("job", "base"):
                runs[kind].append(run_job(args.layout, lake, outs[kind], args.master,
                                          args.event_log if r == 0 and kind == "job" else None,
                                          args.lib if kind == "job" else args.base_lib, job_set,
                                          java_options if kind == "job" else ()))
            elif kind == "floor":
                runs[kind].append(child("floor", args.layout, outs["job"], outs[kind]))
            else:
                runs[kind].append(child(peer if kind == "peer" else "seed", args.layout, lake, outs[kind]))
        print(f"[{n}] run {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1]['wall']:.1f}s" for k, v in runs.items()),
              flush=True)
    result = {kind: {key: statistics.median(m[key] for m in ms) for key in ("wall", "cpu", "driver_mb", "total_mb")}
              for kind, ms in runs.items()}
    for kind, ms in runs.items():
        result[kind].update(frames=ms[-1]["frames"], runs=[round(m["wall"], 1) for m in ms])
        if kind in ("job", "base"):
            result[kind]["in_job"] = statistics.median(m["in_job"] for m in ms)
    if "peer" in runs and n <= args.verify_max:  # the peer wrote the job's labels, or the comparison is void
        first = (os.path.join(work, f"{kind}_{args.layout}_{n}_run1") for kind in ("job", "peer"))
        result["peer"]["compare"] = child("compare", args.layout, *first)
    return result


def report(results: dict[int, dict], repeats: int) -> str:
    lines = []
    for n, r in results.items():
        lines.append(f"N={n} frames, median of {repeats} run(s)")
        for kind, m in r.items():
            lines.append(f"  {LABELS[kind]:25s} wall {m['wall']:9.3f} s  cpu {m['cpu']:7.1f} s  frames/s {n / m['wall']:9.0f}  "
                         f"driver peak {m['driver_mb']:7.0f} MB  job peak {m['total_mb']:7.0f} MB  "
                         f"runs {', '.join(f'{w:.1f}' for w in m['runs'])}")
        job = r["job"]
        lines.append(f"  job wall inside Spark (stats.json wall_seconds) {job['in_job']:.1f} s"
                     + (f", at --base-lib {r['base']['in_job']:.1f} s" if "base" in r else ""))
        lines.append("  label files written: " + ", ".join(f"{kind} {m['frames']}" for kind, m in r.items()))
        if "compare" in r.get("peer", {}):
            c = r["peer"]["compare"]
            lines.append(f"  peer vs job labels: {c['missing']} frames on one side only, {c['differ']} of {c['frames']} "
                         f"differ, by at most {c['max_diff']:.1e}")
        ratios = [f"job/{kind} {job['wall'] / r[kind]['wall']:.3f}" + (f" (target <= {TARGETS[kind]})"
                                                                       if kind in TARGETS else "")
                  for kind in ("base", "peer", "seed", "floor") if kind in r]
        if ratios:
            lines.append("  " + "   ".join(ratios))
        if "base" in r:  # CPU seconds of the whole process tree: what a busy machine disturbs least
            lines.append(f"  cpu job/base {job['cpu'] / r['base']['cpu']:.3f}")
    sizes = sorted(results)
    if len(sizes) >= 2:
        small, big = results[sizes[0]]["job"], results[sizes[-1]]["job"]
        lines.append(f"ratio {sizes[-1]}/{sizes[0]}: job wall {big['wall'] / small['wall']:.2f} "
                     f"(linear: {sizes[-1] / sizes[0]:.0f}), driver peak {big['driver_mb'] / small['driver_mb']:.2f} "
                     "(target <= 1.2)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="100000,1000000", help="comma-separated frame counts")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--layout", choices=("parquet", "udacity"), default="parquet",
                   help="parquet: annotations + manifest (conf/demo.yaml); udacity: the seed's CSVs (conf/udacity.yaml)")
    p.add_argument("--work", help="folder for lakes and outputs (kept; default: a temporary folder, removed)")
    p.add_argument("--master", default="local[*]")
    p.add_argument("--event-log", help="write the Spark event log of each size's first job run here (profiling)")
    p.add_argument("--lib", help="source root of the yololake to bench (e.g. a snapshot's lib/); default: installed")
    p.add_argument("--base-lib", help="a second yololake source root (e.g. the previous commit's lib/), run as "
                                      "program 'base' beside the job in the same series")
    p.add_argument("--job-set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra --set for the job, e.g. output.layout=shard_archive (the peer then writes tars)")
    p.add_argument("--plain-jvm", action="store_true",
                   help="start the job's JVM without the class archive (see yololake jvm-archive)")
    p.add_argument("--programs", default="job,peer,seed,floor",
                   help=f"which to run, in this order, from {', '.join(PROGRAMS)} (the job always runs; the floor "
                        "rewrites the job's files)")
    p.add_argument("--verify-max", type=int, default=100_000, metavar="N",
                   help="compare the peer's labels with the job's at sizes up to N (reads every label file)")
    p.add_argument("--settle", type=float, default=300.0, metavar="SECONDS",
                   help="longest wait for the disk to be quiet before each timed program (0: no wait)")
    p.add_argument("--child", nargs=3, metavar=("KIND", "IN", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        bench_peers.run_child(args.child[0], args.layout, *args.child[1:])
        return 0
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        p.error(f"--sizes {args.sizes!r}: expected comma-separated whole numbers, e.g. 100000,1000000")
    if not sizes or min(sizes) < 1 or args.repeats < 1:
        p.error("--sizes needs positive frame counts and --repeats at least 1")
    given = [x.strip() for x in args.programs.split(",") if x.strip()]
    programs = tuple(dict.fromkeys(given if "job" in given else ["job", *given]))  # run in the order given
    if "floor" in programs and programs.index("floor") < programs.index("job"):
        p.error("--programs: floor rewrites the job's files, so it must come after job")
    if not set(programs) <= set(PROGRAMS) or ("base" in programs) != bool(args.base_lib):
        p.error(f"--programs {args.programs!r}: choose from {', '.join(PROGRAMS)} ('base' with --base-lib only)")
    work = args.work or tempfile.mkdtemp(prefix="yololake-bench-")
    os.makedirs(os.path.join(work, PROBES), exist_ok=True)
    try:
        results = {n: bench_size(n, args, programs, work) for n in sizes}
    finally:
        shutil.rmtree(work if not args.work else os.path.join(work, PROBES), ignore_errors=True)
    cpu = f"{psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM"
    print(f"\nmachine: {cpu}; layout {args.layout}; master {args.master}; "
          f"job --set {' '.join(args.job_set) or '(defaults)'}; load average {os.getloadavg()[0]:.1f}")
    print(report(results, args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
