"""`yololake val`: YOLOv5's own val.py, or ultralytics' val, with trained weights on a yololake dataset
(staged and prepared like train, with that trainer's prebuilt caches).

    yololake val --weights best.pt --data DATASET_OR_URL [--trainer yolov5|ultralytics] [--task val|test]
        [--img 640] [--device cpu] [--stage-dir DIR] [--stage auto|always|never] [-- val.py args, or key=value]
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from yololake.cli import run_command
from yololake.errors import UsageError
from yololake.train import prepare, stage
from yololake.train.args import STAGE_MODES, split_extra
from yololake.train.detect import common_parser, run_script


def main(argv: Sequence[str] | None = None) -> int:
    own, extra = split_extra(sys.argv[1:] if argv is None else argv)
    p = common_parser("yololake val", "Validate trained weights on a yololake dataset (YOLOv5's val.py or "
                      "ultralytics' val).")
    p.add_argument("--data", required=True, help="dataset folder or URL written by build-dataset")
    p.add_argument("--task", choices=("val", "test"), default="val", help="which split (val)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--project", default="runs/val", help="parent of the run folder (runs/val)")
    p.add_argument("--stage-dir", default="", help="as for yololake train")
    p.add_argument("--stage", choices=STAGE_MODES, default="auto")
    ns = p.parse_args(own)

    def body() -> int:
        root = stage.default_stage_root(ns.stage_dir or os.environ.get("YOLOLAKE_STAGE_DIR", ""))
        prepared = prepare.prepare(stage.resolve(ns.data), root, ns.stage, progress=sys.stderr.isatty(),
                                   trainer=ns.trainer)
        if ns.task not in prepared.caches:
            raise UsageError(f"--task {ns.task}: the dataset has no {ns.task} split")
        return run_script("val", ns, {"data": prepared.yaml_path, "task": ns.task, "batch": ns.batch_size}, extra,
                          root)

    return run_command("yololake val", body)
