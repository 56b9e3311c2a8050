"""Where a Spark application's time went, from its event log (bench_build.py --event-log DIR).

    .venv/bin/python scripts/eventlog_summary.py EVENTLOG [--top 15]

EVENTLOG is an event log file or a folder holding one (rolling v2 logs; .zstd files are read through
the zstd command). Prints the application's wall time, then per stage: wall, tasks, summed executor
run and CPU time, GC, shuffle bytes, and the Python side (time to run/execute Python in the workers),
so JVM work and Python work can be told apart.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess

PY_METRICS = {"time to run Python workers": "py_run", "time to execute Python code": "py_exec",
              "time to start Python workers": "py_start"}
TASK_METRICS = {"internal.metrics.executorRunTime": "run", "internal.metrics.executorCpuTime": "cpu",
                "internal.metrics.jvmGCTime": "gc", "internal.metrics.shuffle.write.bytesWritten": "shuffle_w",
                "internal.metrics.input.recordsRead": "records_in"}


def _lines(path: str):
    files = sorted(glob.glob(os.path.join(path, "**", "events_*"), recursive=True)) if os.path.isdir(path) else [path]
    for f in files:
        if f.endswith(".zstd"):
            yield from subprocess.run(["zstd", "-dc", f], capture_output=True, text=True, check=True).stdout.splitlines()
        else:
            with open(f, encoding="utf-8") as fh:
                yield from fh


def summarize(path: str) -> tuple[float, list[dict]]:
    stages, app_start, app_end = [], None, None
    for line in _lines(path):
        event = json.loads(line)
        kind = event["Event"]
        if kind == "SparkListenerApplicationStart":
            app_start = event["Timestamp"]
        elif kind == "SparkListenerApplicationEnd":
            app_end = event["Timestamp"]
        elif kind == "SparkListenerStageCompleted":
            info = event["Stage Info"]
            row = {"id": info["Stage ID"], "name": info["Stage Name"].split(" at ")[0], "tasks": info["Number of Tasks"],
                   "wall": (info.get("Completion Time", 0) - info.get("Submission Time", 0)) / 1000,
                   "start": info.get("Submission Time", 0)}
            for acc in info.get("Accumulables", []):
                key = PY_METRICS.get(acc["Name"]) or TASK_METRICS.get(acc["Name"])
                if key:
                    value = float(acc["Value"])
                    # Python SQL metrics and executorRunTime are ms, executorCpuTime ns.
                    row[key] = value / 1e9 if key == "cpu" else value if key in ("shuffle_w", "records_in") else value / 1000
            stages.append(row)
    wall = ((app_end or 0) - (app_start or 0)) / 1000
    return wall, stages


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("eventlog")
    p.add_argument("--top", type=int, default=15, help="stages to list, longest first")
    args = p.parse_args()
    wall, stages = summarize(args.eventlog)
    busy = sum(s["wall"] for s in stages)
    print(f"application wall {wall:.1f} s; {len(stages)} stages, {busy:.1f} s of stage wall (stages may overlap)")
    print(f"{'stage':>5} {'wall s':>7} {'tasks':>5} {'run s':>7} {'cpu s':>7} {'gc s':>5} {'py run s':>8} "
          f"{'py exec s':>9} {'shuffle MB':>10} {'rows in':>9}  name")
    for s in sorted(stages, key=lambda s: -s["wall"])[: args.top]:
        print(f"{s['id']:>5} {s['wall']:>7.1f} {s['tasks']:>5} {s.get('run', 0):>7.1f} {s.get('cpu', 0):>7.1f} "
              f"{s.get('gc', 0):>5.1f} {s.get('py_run', 0):>8.1f} {s.get('py_exec', 0):>9.1f} "
              f"{s.get('shuffle_w', 0) / 2**20:>10.1f} {int(s.get('records_in', 0)):>9}  {s['name']}")
    totals = {k: sum(s.get(k, 0) for s in stages) for k in ("run", "cpu", "gc", "py_run", "py_exec")}
    print("totals: " + ", ".join(f"{k} {v:.1f} s" for k, v in totals.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
