"""Real YOLOv5 training on CPU through the launcher, with no route out, then detect with its best.pt."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import guarded_env

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def trained(demo_dataset, tmp_path_factory):
    """One real training run shared by the tests of this module: (run folder, completed process, env)."""
    base = tmp_path_factory.mktemp("train")
    env = guarded_env(base)
    proc = subprocess.run([sys.executable, "-m", "yololake", "train", "--data", demo_dataset[1]["root"],
                           "--model", "yolov5n", "--epochs", "1", "--img", "128", "--device", "cpu",
                           "--weights", "", "--batch-size", "16", "--project", str(base / "runs"),
                           "--", "--workers", "0", "--noplots"],
                          cwd=base, env=env, capture_output=True, text=True, timeout=600, check=False)
    return base, proc, env


def test_training_runs_real_yolov5_and_reports_final_metrics(trained, demo_dataset):
    base, proc, _ = trained
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = base / "runs" / "exp"
    assert (run / "weights" / "best.pt").stat().st_size > 100_000
    with open(run / "results.csv", newline="") as f:
        rows = [{k.strip(): v.strip() for k, v in row.items()} for row in csv.DictReader(f)]
    assert len(rows) == 1 and rows[0]["epoch"] == "0"
    assert f"final metrics (epoch 0): precision {float(rows[0]['metrics/precision']):.4f}" in proc.stdout
    assert "trainer exited with 0" in proc.stdout
    # YOLOv5 used our caches (no "New cache created"), and the run folder records what ran on what.
    assert "New cache created" not in proc.stdout + proc.stderr
    info = json.loads((run / "yololake_run.json").read_text())
    assert info["dataset"]["url"] == demo_dataset[1]["root"] and "-m yolov5.train" in info["command"]
    assert info["dataset"]["frames"] == demo_dataset[1]["frames_written"]
    # The version it trained on, resolved once from OUT/dataset.yaml, and what that version was built from.
    assert info["dataset"]["version_id"] == demo_dataset[1]["version"]
    assert info["dataset"]["input_fingerprint"] == json.loads(
        (Path(demo_dataset[0]) / "_SUCCESS").read_text())["fingerprint"]


def test_no_network_access_was_attempted(trained):
    base, _, _ = trained
    log = (base / "network.log").read_text().splitlines()
    assert sum(line.startswith("guard") for line in log) >= 2  # launcher and trainer both ran guarded
    assert [line for line in log if line.startswith("connect")] == []


def test_detect_with_the_trained_weights_writes_annotated_images(trained, demo_dataset, tmp_path):
    base, proc, env = trained
    assert proc.returncode == 0
    images = os.path.join(demo_dataset[0], "images", "val", "00000")
    result = subprocess.run([sys.executable, "-m", "yololake", "detect", "--weights",
                             str(base / "runs" / "exp" / "weights" / "best.pt"), "--source", images, "--img", "128",
                             "--device", "cpu", "--conf", "0.001", "--project", str(tmp_path / "detect")],
                            env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    written = sorted(os.listdir(tmp_path / "detect" / "exp"))
    assert written == sorted(os.listdir(images))
    assert all((tmp_path / "detect" / "exp" / n).stat().st_size > 0 for n in written)
    assert not [line for line in (base / "network.log").read_text().splitlines() if line.startswith("connect")]


def test_missing_weights_fail_before_anything_runs(demo_dataset, tmp_path):
    result = subprocess.run([sys.executable, "-m", "yololake", "detect", "--weights", str(tmp_path / "best.pt"),
                             "--source", demo_dataset[0]], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"yololake detect: error: --weights {tmp_path / 'best.pt'}: file not found; "
                                     "this launcher never downloads weights, so copy the .pt file to this machine "
                                     "and pass its path, or pass --weights '' to train from scratch")


def test_val_with_the_trained_weights_reports_metrics_on_the_val_split(trained, demo_dataset, tmp_path):
    base, proc, env = trained
    assert proc.returncode == 0
    result = subprocess.run([sys.executable, "-m", "yololake", "val", "--weights",
                             str(base / "runs" / "exp" / "weights" / "best.pt"), "--data", demo_dataset[0],
                             "--img", "128", "--device", "cpu", "--project", str(tmp_path / "val"),
                             "--", "--workers", "0"],  # as in training: no loader processes on 2 cores
                            env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    frames = demo_dataset[1]["by_split"]["val"]["frames"]
    boxes = demo_dataset[1]["by_split"]["val"]["boxes"]
    assert any(line.split()[:3] == ["all", str(frames), str(boxes)] for line in result.stdout.splitlines()
               + result.stderr.splitlines()), result.stdout[-2000:] + result.stderr[-3000:]
    assert f"results in {tmp_path / 'val' / 'exp'} (exit 0)" in result.stdout
