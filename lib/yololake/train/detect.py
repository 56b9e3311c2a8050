"""`yololake detect`: YOLOv5's own detect.py with trained weights, offline (the seed's last step).

    yololake detect --weights runs/train/exp/weights/best.pt --source IMAGE_OR_FOLDER [--img 640]
        [--conf 0.25] [--device cpu] [--project runs/detect] [--name exp] [--yolov5-dir PATH] [-- detect.py args]
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
from yololake.train import launch, stage, yolov5_env
from yololake.train.args import split_extra


def common_parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--weights", required=True, help="trained weights (.pt), e.g. runs/train/exp/weights/best.pt")
    p.add_argument("--img", "--imgsz", dest="img", type=int, default=640, help="inference size in pixels (640)")
    p.add_argument("--conf", type=float, default=None, help="confidence threshold (YOLOv5's default)")
    p.add_argument("--device", default="", help="'', cpu, or 0,1,... ('')")
    p.add_argument("--yolov5-dir", default="", help="a clone of ultralytics/yolov5 instead of the pip package")
    p.add_argument("--name", default="exp", help="run folder name; exp2, exp3... if taken (exp)")
    return p


def run_script(name: str, ns: argparse.Namespace, args: list[str], extra: tuple[str, ...], base: str) -> int:
    """Run YOLOv5's `name`.py offline into a run folder we choose; print where results are."""
    weights = yolov5_env.check_weights(ns.weights)
    if not weights:
        raise UsageError("--weights: required (a trained .pt file)")
    folder = launch.run_dir(ns.project, ns.name)
    yolo = yolov5_env.locate(ns.yolov5_dir)
    cmd = [yolov5_env.python(), *yolov5_env.script(yolo if ns.yolov5_dir else "", name),
           "--weights", weights, "--imgsz", str(ns.img), "--project", os.path.dirname(folder),
           "--name", os.path.basename(folder), "--exist-ok", *args]
    if ns.conf is not None:
        cmd += ["--conf-thres", str(ns.conf)]
    if ns.device:
        cmd += ["--device", ns.device]
    cmd += list(extra)
    print(f"yololake {name}: {shlex.join(cmd)}", flush=True)
    code = subprocess.run(cmd, env=yolov5_env.offline_env(base), check=False).returncode
    print(f"yololake {name}: results in {folder} (exit {code})", flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    own, extra = split_extra(sys.argv[1:] if argv is None else argv)
    p = common_parser("yololake detect", "Detect objects with trained YOLOv5 weights (YOLOv5's detect.py).")
    p.add_argument("--source", required=True, help="an image, a folder of images, or a list/video YOLOv5 reads")
    p.add_argument("--project", default="runs/detect", help="parent of the run folder (runs/detect)")
    ns = p.parse_args(own)

    def body() -> int:
        if not os.path.exists(ns.source):
            raise UsageError(f"--source {ns.source}: no such file or folder")
        return run_script("detect", ns, ["--source", os.path.abspath(ns.source)], extra,
                          stage.default_stage_root(os.environ.get("YOLOLAKE_STAGE_DIR", "")))

    return run_command("yololake detect", body)
