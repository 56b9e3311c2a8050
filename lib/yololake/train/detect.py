"""`yololake detect`: YOLOv5's own detect.py, or ultralytics' predict, with trained weights, offline.

    yololake detect --weights runs/train/exp/weights/best.pt --source IMAGE_OR_FOLDER [--img 640]
        [--trainer yolov5|ultralytics] [--conf 0.25] [--device cpu] [--project runs/detect] [--name exp]
        [--yolov5-dir PATH] [--trust-weights] [-- detect.py args, or ultralytics key=value]
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence

from yololake.cli import run_command
from yololake.errors import UsageError
from yololake.train import launch, safe_load, stage, yolov5_env
from yololake.train.args import TRAINERS, split_extra

FLAGS = {"source": "--source", "data": "--data", "task": "--task", "batch": "--batch-size", "conf": "--conf-thres",
         "device": "--device"}
"""The shared options under YOLOv5's flag names; ultralytics takes them as key=value (task -> split)."""
MODES = {"detect": "predict", "val": "val"}


def common_parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--weights", required=True, help="trained weights (.pt), e.g. runs/train/exp/weights/best.pt")
    p.add_argument("--img", "--imgsz", dest="img", type=int, default=640, help="inference size in pixels (640)")
    p.add_argument("--conf", type=float, default=None, help="confidence threshold (YOLOv5's default)")
    p.add_argument("--device", default="", help="'', cpu, or 0,1,... ('')")
    p.add_argument("--yolov5-dir", default="", help="a clone of ultralytics/yolov5 instead of the pip package")
    p.add_argument("--name", default="exp", help="run folder name; exp2, exp3... if taken (exp)")
    p.add_argument("--trainer", choices=TRAINERS, default="yolov5", help="whose weights: yolov5 or ultralytics (yolov5)")
    p.add_argument("--trust-weights", action="store_true", help="full unpickling of --weights (code can run) "
                   "instead of weights_only=True and the trainer's class allowlist: only for files you trust")
    return p


def trainer_command(name: str, ns: argparse.Namespace, weights: str, folder: str, values: dict) -> list[str]:
    """The command of YOLOv5's `name`.py (behind the allowlist) or of ultralytics' predict/val."""
    values = {k: v for k, v in {**values, "conf": ns.conf, "device": ns.device}.items() if v not in (None, "")}
    if ns.trainer == "ultralytics":
        values = {"split" if k == "task" else k: v for k, v in values.items()}
        return [yolov5_env.python(), "-m", "yololake.train.ultralytics_run", MODES[name], f"model={weights}",
                f"imgsz={ns.img}", f"project={os.path.dirname(folder)}", f"name={os.path.basename(folder)}",
                "exist_ok=True", *(f"{k}={v}" for k, v in values.items())]
    yolo = yolov5_env.locate(ns.yolov5_dir)
    return [yolov5_env.python(), "-m", "yololake.train.safe_load", "yolov5",
            *yolov5_env.script(yolo if ns.yolov5_dir else "", name), "--weights", weights, "--imgsz", str(ns.img),
            "--project", os.path.dirname(folder), "--name", os.path.basename(folder), "--exist-ok",
            *(x for k, v in values.items() for x in (FLAGS[k], str(v)))]


def run_script(name: str, ns: argparse.Namespace, values: dict, extra: tuple[str, ...], base: str) -> int:
    """Run the trainer's detect or val offline into a run folder we choose; print where results are."""
    weights = yolov5_env.check_weights(ns.weights)
    if not weights:
        raise UsageError("--weights: required (a trained .pt file)")
    clone = ns.trainer == "yolov5" and ns.yolov5_dir  # a clone's classes are checked in its process only
    if not (ns.trust_weights or clone) and (why := safe_load.refusal(weights, ns.trainer)):
        raise UsageError(f"--weights: {why}")
    folder = launch.run_dir(ns.project, ns.name)
    cmd = trainer_command(name, ns, weights, folder, values) + list(extra)
    print(f"yololake {name}: {shlex.join(cmd)}", flush=True)
    code = subprocess.run(cmd, env=yolov5_env.offline_env(base, trust=ns.trust_weights), check=False).returncode
    print(f"yololake {name}: results in {folder} (exit {code})", flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    own, extra = split_extra(sys.argv[1:] if argv is None else argv)
    p = common_parser("yololake detect", "Detect objects with trained weights (YOLOv5's detect.py or ultralytics' "
                      "predict).")
    p.add_argument("--source", required=True, help="an image, a folder of images, or a list/video YOLOv5 reads")
    p.add_argument("--project", default="runs/detect", help="parent of the run folder (runs/detect)")
    ns = p.parse_args(own)

    def body() -> int:
        if not os.path.exists(ns.source):
            raise UsageError(f"--source {ns.source}: no such file or folder")
        return run_script("detect", ns, {"source": os.path.abspath(ns.source)}, extra,
                          stage.default_stage_root(os.environ.get("YOLOLAKE_STAGE_DIR", "")))

    return run_command("yololake detect", body)
