"""The benchmark runs end to end at a tiny size and prints every figure (not timed: speed is the script's job)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
NUMBER = r"([0-9]+(?:\.[0-9]+)?)"


def test_bench_prints_every_figure_for_each_size_and_the_ratios(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_build.py"), "--sizes", "120,240",
                          "--repeats", "1", "--work", str(tmp_path), "--settle", "20"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    for n in (120, 240):
        block = out.split(f"N={n} frames, median of 1 run(s)")[1].split("N=")[0]
        for kind in ("job (spark-submit)", "peer (polars, all cores)", "seed (pandas iterrows)", "floor (write only)"):
            line = re.search(rf"{re.escape(kind)}\s+wall\s+{NUMBER} s\s+cpu\s+{NUMBER} s\s+frames/s\s+{NUMBER}\s+"
                             rf"driver peak\s+{NUMBER} MB\s+job peak\s+{NUMBER} MB", block)
            assert line, f"{kind} figures missing for N={n}:\n{block}"
            wall, cpu, rate, driver, total = map(float, line.groups())
            assert wall > 0 and cpu > 0 and driver > 0 and total >= driver
            # wall is printed to 1 ms and the rate to a whole number: the rate must lie within what that allows
            low, high = n / (wall + 0.0005) - 0.5, n / max(wall - 0.0005, 1e-9) + 0.5
            assert low <= rate <= high, (rate, low, high)
        assert re.search(rf"job/peer {NUMBER} .*job/seed {NUMBER} .*job/floor {NUMBER}", block)
        assert re.search(rf"job wall inside Spark \(stats.json wall_seconds\) {NUMBER} s", block)
        # every frame written by the job and the floor; the seed's script skips the background (every 20th)
        assert f"label files written: job {n}, peer {n}, seed {n - n // 20}, floor {n}" in block
        # the peer did the job's work: every frame, each number within one rounding step of the job's
        compare = re.search(rf"peer vs job labels: 0 frames on one side only, {NUMBER} of {n} differ, by at most "
                            r"([0-9.e+-]+)", block)
        assert compare and float(compare.group(2)) <= 1.0001e-6, block
    assert re.search(rf"ratio 240/120: job wall {NUMBER} \(linear: 2\), driver peak {NUMBER}", out)
    assert re.search(r"machine: \d+ CPUs", out)


def test_bench_runs_the_seeds_own_csv_layout_with_the_peer(tmp_path):
    """conf/udacity.yaml on generated Udacity CSVs: the job and the polars peer write the same labels."""
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_build.py"), "--sizes", "150", "--repeats",
                          "1", "--layout", "udacity", "--programs", "job,peer", "--work", str(tmp_path),
                          "--settle", "20", "--job-set", "output.layout=shard_archive"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "layout udacity" in run.stdout and "job --set output.layout=shard_archive" in run.stdout
    assert "label files written: job 150, peer 150" in run.stdout, run.stdout
    assert re.search(r"peer vs job labels: 0 frames on one side only, 0 of 150 differ", run.stdout), run.stdout
    assert list((tmp_path / "peer_udacity_150_run1" / "labels" / "train").glob("*.tar")), "the peer wrote no tars"
