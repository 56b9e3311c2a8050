"""Build and run the trainer (YOLOv5's train.py or ultralytics, directly or under torchrun), save the run's
provenance, report metrics."""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shlex
import subprocess

from yololake.storage import atomic_write
from yololake.train import ultralytics_env, yolov5_env
from yololake.train.args import TrainOptions
from yololake.train.preflight import torchrun_prefix

RUN_RECORD = "yololake_run.json"
METRICS = {
    "yolov5": (("metrics/precision", "precision"), ("metrics/recall", "recall"), ("metrics/mAP_0.5", "mAP50"),
               ("metrics/mAP_0.5:0.95", "mAP50-95"), ("val/box_loss", "val box loss")),
    "ultralytics": (("metrics/precision(B)", "precision"), ("metrics/recall(B)", "recall"),
                    ("metrics/mAP50(B)", "mAP50"), ("metrics/mAP50-95(B)", "mAP50-95"), ("val/box_loss", "val box loss")),
}


def run_dir(project: str, name: str) -> str:
    """The run folder, chosen here (exp, exp2, ...) and passed with --exist-ok, so we know where results land."""
    base = os.path.join(os.path.abspath(project), name)
    if not os.path.exists(base):
        return base
    n = 2
    while os.path.exists(f"{base}{n}"):
        n += 1
    return f"{base}{n}"


def train_args(o: TrainOptions, yaml_path: str, cfg: str, weights: str, folder: str) -> list[str]:
    args = ["--data", yaml_path, "--weights", weights, "--cfg", cfg, "--epochs", str(o.epochs),
            "--batch-size", str(o.batch_size), "--img", str(o.img), "--project", os.path.dirname(folder),
            "--name", os.path.basename(folder), "--exist-ok"]
    if o.device:
        args += ["--device", o.device]
    return args + list(o.extra)


def ultralytics_args(o: TrainOptions, yaml_path: str, folder: str, cpu: bool = False) -> list[str]:
    """ultralytics' key=value arguments: the same options under its names, extras last."""
    args = [f"model={ultralytics_env.model_arg(o.model)}", f"data={yaml_path}", f"epochs={o.epochs}",
            f"batch={o.batch_size}", f"imgsz={o.img}", f"project={os.path.dirname(folder)}",
            f"name={os.path.basename(folder)}", "exist_ok=True"]
    if o.weights:
        args.append(f"pretrained={os.path.abspath(o.weights)}")
    # Under torchrun each process picks devices[LOCAL_RANK] of this node's list.
    device = o.device or ("cpu" if cpu else ",".join(map(str, range(o.nproc_per_node))) if o.distributed else "")
    return args + ([f"device={device}"] if device else []) + list(o.extra)


def command(o: TrainOptions, yaml_path: str, folder: str, python: str | None = None, cpu: bool = False) -> list[str]:
    """This node's exact trainer command line (`cpu`: the preflight found no GPU to use)."""
    python = python or yolov5_env.python()
    if o.trainer == "ultralytics":
        target = ["-m", "yololake.train.ultralytics_run", "train"]
        args = ultralytics_args(o, yaml_path, folder, cpu)
    else:
        yolo = yolov5_env.locate(o.yolov5_dir)
        cfg = yolov5_env.model_cfg(o.model, yolo)
        target = ["-m", "yololake.train.safe_load", "yolov5", *yolov5_env.script(yolo if o.yolov5_dir else "", "train")]
        args = train_args(o, yaml_path, cfg, o.weights and os.path.abspath(o.weights), folder)
    if not o.distributed:  # one process: YOLOv5 under torchrun always goes DDP, which needs CUDA
        return [python, *target, *args]
    return [*torchrun_prefix(o, python), *target, *args]


def trainer_version(o: TrainOptions) -> str:
    if o.trainer == "ultralytics":
        return ultralytics_env.version()
    if o.yolov5_dir:
        return f"clone at {os.path.abspath(o.yolov5_dir)}"
    from importlib.metadata import version

    return version("yolov5")


def save_provenance(folder: str, o: TrainOptions, cmd: list[str], prepared) -> str:
    os.makedirs(folder, exist_ok=True)
    info = {
        "command": shlex.join(cmd),
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in o.__dict__.items()},
        "dataset": {"url": prepared.source.url, "version": prepared.source.version,
                    "version_id": prepared.source.version_id,
                    "input_fingerprint": prepared.source.success.get("fingerprint"),
                    "run_id": prepared.source.success.get("run_id"), "frames": prepared.source.success.get("frames"),
                    "boxes": prepared.source.success.get("boxes"), "local_root": prepared.root,
                    "staged": prepared.staged, "fingerprint": prepared.fingerprint, "yaml": prepared.yaml_path},
        "trainer": {"name": o.trainer, "version": trainer_version(o)},
        "node_rank": o.node_rank,
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    path = os.path.join(folder, RUN_RECORD)
    atomic_write(path, json.dumps(info, indent=2, sort_keys=True))
    return path


def record_end(folder: str, code: int, seconds: float, metrics: dict | None = None) -> None:
    """Add the trainer's exit code, wall time and final metrics (results.csv's last row) to yololake_run.json."""
    path = os.path.join(folder, RUN_RECORD)
    with open(path, encoding="utf-8") as f:
        info = json.load(f)
    info.update(exit_code=code, trainer_seconds=round(seconds, 2), final_metrics=metrics,
                finished=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    atomic_write(path, json.dumps(info, indent=2, sort_keys=True))


def final_metrics(folder: str) -> dict | None:
    """The last row of results.csv (YOLOv5 pads its headers and values with spaces; ultralytics does not)."""
    path = os.path.join(folder, "results.csv")
    if not os.path.exists(path):
        return None
    with open(path, newline="", encoding="utf-8") as f:
        rows = [{k.strip(): v.strip() for k, v in row.items() if k} for row in csv.DictReader(f)]
    return rows[-1] if rows else None


def format_metrics(row: dict, trainer: str = "yolov5") -> str:
    parts = [f"{label} {float(row[key]):.4f}" for key, label in METRICS[trainer] if row.get(key) not in (None, "")]
    return f"final metrics (epoch {row.get('epoch', '?')}): " + ", ".join(parts)


def run_trainer(cmd: list[str], env: dict) -> int:
    """Stream the trainer's output to this console; its exit code is ours."""
    try:
        return subprocess.run(cmd, env=env, check=False).returncode
    except KeyboardInterrupt:
        return 130


def upload(folder: str, url: str) -> str:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    target = f"{path.rstrip('/')}/{os.path.basename(folder)}"
    fs.put(folder, target, recursive=True)
    return target
