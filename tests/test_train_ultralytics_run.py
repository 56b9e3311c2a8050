"""Real 1-2 epoch CPU training with both trainers through `yololake train`, offline (socket guard): ultralytics
on the prebuilt cache, then detect and val; the built dataset untouched; resume and fine-tune from their own
checkpoints under the weights_only allowlist; a planted os.system checkpoint refused and never run."""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import connects, guarded_env, tree_snapshot

pytestmark = pytest.mark.slow
COMMON = ("--epochs", "2", "--img", "64", "--device", "cpu", "--batch-size", "16")
EXTRAS = {"ultralytics": ("--", "save_period=1", "plots=False"),
          "yolov5": ("--", "--save-period", "1", "--workers", "0", "--noplots")}
MODELS = {"ultralytics": "yolo11n.yaml", "yolov5": "yolov5n"}


def yololake(base: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yololake", *args], cwd=base, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def train(base, env, data, trainer, project, *flags, extras=None):
    return yololake(base, env, "train", "--trainer", trainer, "--data", data, "--model", MODELS[trainer], *COMMON,
                    "--project", str(base / project), *flags, *(EXTRAS[trainer] if extras is None else extras))


def results(run: Path) -> list[dict]:
    with open(run / "results.csv", newline="") as f:
        return [{k.strip(): v.strip() for k, v in row.items()} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def runs(demo_dataset, tmp_path_factory):
    """The dataset's bytes before, a preflight that prebuilds the ultralytics caches, one training per trainer
    (2 epochs, a checkpoint per epoch), and the dataset's bytes after."""
    base = tmp_path_factory.mktemp("trainers")
    env = guarded_env(base)
    out = demo_dataset[1]["root"]
    before = tree_snapshot(out)
    pre = train(base, env, out, "ultralytics", "pre", "--preflight-only", extras=())
    assert pre.returncode == 0, pre.stdout[-2000:] + pre.stderr[-2000:]
    caches = re.findall(r"label cache \w+: .*\(written: (.*)\)", pre.stdout)
    cache_bytes = {p: (Path(p).read_bytes(), os.stat(p).st_mtime_ns) for p in caches}
    procs = {t: train(base, env, out, t, f"runs_{t}") for t in ("ultralytics", "yolov5")}
    return SimpleNamespace(base=base, env=env, out=out, before=before, after=tree_snapshot(out), caches=cache_bytes,
                           procs=procs, run={t: base / f"runs_{t}" / "exp" for t in procs})


def test_ultralytics_trains_offline_on_the_prebuilt_cache(runs, demo_dataset):
    proc = runs.procs["ultralytics"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    logged = proc.stdout + proc.stderr
    assert "New cache created" not in logged and "Scanning" in logged
    assert len(runs.caches) == 3 and all(p.endswith(".cache") and "-inplace-ultralytics" in p for p in runs.caches)
    for path, (data, mtime) in runs.caches.items():  # ultralytics read them and wrote nothing
        assert f"up to date: {path}" in proc.stdout and Path(path).read_bytes() == data
        assert os.stat(path).st_mtime_ns == mtime
    rows = results(runs.run["ultralytics"])
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert f"final metrics (epoch 2): precision {float(rows[-1]['metrics/precision(B)']):.4f}" in proc.stdout
    info = json.loads((runs.run["ultralytics"] / "yololake_run.json").read_text())
    import ultralytics

    assert info["trainer"] == {"name": "ultralytics", "version": ultralytics.__version__}
    assert info["exit_code"] == 0 and info["final_metrics"]["epoch"] == "2"
    assert info["dataset"]["version_id"] == demo_dataset[1]["version"]
    assert "-m yololake.train.ultralytics_run train" in info["command"]
    log = (runs.base / "network.log").read_text().splitlines()
    assert sum(line.startswith("guard") for line in log) >= 4 and connects(runs.base) == []


def test_the_built_dataset_is_byte_identical_after_training_with_either_trainer(runs):
    assert {t: p.returncode for t, p in runs.procs.items()} == {"ultralytics": 0, "yolov5": 0}
    assert runs.after == runs.before


def test_detect_and_val_with_the_trained_ultralytics_weights(runs, demo_dataset):
    best = str(runs.run["ultralytics"] / "weights" / "best.pt")
    images = os.path.join(demo_dataset[0], "images", "val", "00000")
    det = yololake(runs.base, runs.env, "detect", "--trainer", "ultralytics", "--weights", best, "--source", images,
                   "--img", "64", "--device", "cpu", "--conf", "0.001", "--project", str(runs.base / "detect"))
    assert det.returncode == 0, det.stdout[-2000:] + det.stderr[-2000:]
    assert sorted(os.listdir(runs.base / "detect" / "exp")) == sorted(os.listdir(images))
    val = yololake(runs.base, runs.env, "val", "--trainer", "ultralytics", "--weights", best, "--data", runs.out,
                   "--img", "64", "--device", "cpu", "--project", str(runs.base / "val"))
    assert val.returncode == 0, val.stdout[-2000:] + val.stderr[-2000:]
    split = demo_dataset[1]["by_split"]["val"]
    assert re.search(rf"^\s+all\s+{split['frames']}\s+{split['boxes']}\s", val.stdout + val.stderr, re.M)
    assert "New cache created" not in val.stdout + val.stderr
    assert connects(runs.base) == []


@pytest.mark.parametrize("trainer", ["ultralytics", "yolov5"])
def test_resume_and_fine_tune_from_own_checkpoints_under_the_allowlist(runs, trainer):
    run = runs.run[trainer]
    assert runs.procs[trainer].returncode == 0
    tune = train(runs.base, runs.env, runs.out, trainer, f"tune_{trainer}", "--weights", str(run / "weights" /
                                                                                            "best.pt"), "--epochs", "1")
    assert tune.returncode == 0, tune.stdout[-3000:] + tune.stderr[-3000:]
    assert len(results(runs.base / f"tune_{trainer}" / "exp")) == 1
    # epoch0.pt: the checkpoint after the first of two epochs (optimizer state kept), so training resumes at epoch 2.
    ckpt = str(run / "weights" / "epoch0.pt")
    flags = ("--model", ckpt) if trainer == "ultralytics" else ()
    extras = ("--", "resume=True") if trainer == "ultralytics" else ("--", "--resume", ckpt, "--workers", "0")
    resumed = train(runs.base, runs.env, runs.out, trainer, f"resume_{trainer}", *flags, extras=extras)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in resumed.stdout + resumed.stderr
    assert len(results(run)) == 3  # the resumed epoch is appended to the run it resumes
    assert connects(runs.base) == []


PLANT = """
import os, torch
class Planted:
    def __reduce__(self):
        return (os.system, ("touch {marker}",))
torch.save({{"model": Planted(), "epoch": 0}}, "{path}")
"""


def test_a_checkpoint_with_a_planted_os_system_is_refused_and_never_runs(runs, demo_dataset, tmp_path):
    marker, evil = tmp_path / "planted-command-ran", tmp_path / "evil.pt"
    subprocess.run([sys.executable, "-c", PLANT.format(marker=marker, path=evil)], check=True)
    images = os.path.join(demo_dataset[0], "images", "val", "00000")
    for trainer in ("ultralytics", "yolov5"):
        # The launcher reads the pickle's globals without unpickling and refuses in one line.
        for cmd in (("train", "--trainer", trainer, "--data", runs.out, "--weights", str(evil), "--device", "cpu"),
                    ("detect", "--trainer", trainer, "--weights", str(evil), "--source", images)):
            proc = yololake(runs.base, runs.env, *cmd)
            assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
            assert f"--weights: checkpoint {evil}: refused: it needs posix.system" in proc.stderr
            assert "--trust-weights" in proc.stderr
    # The trainer process refuses on its own too (a checkpoint the launcher never saw, e.g. named in extras).
    for cmd in (["-m", "yololake.train.ultralytics_run", "predict", f"model={evil}", f"source={images}"],
                ["-m", "yololake.train.safe_load", "yolov5", "-m", "yolov5.detect", "--weights", str(evil),
                 "--source", images, "--device", "cpu"]):
        proc = subprocess.run([sys.executable, *cmd], cwd=tmp_path, env=runs.env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert "yololake: checkpoint refused: it needs posix.system" in proc.stderr
    assert not marker.exists()
    # --trust-weights is the explicit opt-out, and a real one: full unpickling runs the planted (harmless) command.
    trusted = yololake(runs.base, runs.env, "detect", "--weights", str(evil), "--source", images, "--trust-weights")
    assert trusted.returncode != 0 and marker.exists()
