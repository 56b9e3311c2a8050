"""The `yololake` console script: one subcommand per job or tool."""
from __future__ import annotations

import sys
from collections.abc import Sequence

COMMANDS = {
    "build-dataset": ("yololake.build_dataset", "annotations (+ frame manifest) -> YOLOv5 dataset (local Spark)"),
    "report": ("yololake.report", "charts and preview mosaics of a built dataset into OUT/report/"),
    "extract-frames": ("yololake.extract_frames", "videos -> sampled JPEG frames + frame manifest (local Spark)"),
    "sample-lake": ("yololake.sample_lake", "generate a small sample data lake for demos and tests"),
    "train": ("yololake.train.main", "stage a dataset, prebuild YOLOv5's label cache, preflight, run YOLOv5 (torchrun)"),
    "detect": ("yololake.train.detect", "YOLOv5 detect.py with trained weights on images or a folder (offline)"),
    "val": ("yololake.train.val", "YOLOv5 val.py with trained weights on a yololake dataset (offline)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: yololake COMMAND [ARGS]\n\ncommands:")
        for name, (_, text) in COMMANDS.items():
            print(f"  {name:15s} {text}")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    module = __import__(COMMANDS[argv[0]][0], fromlist=["main"])
    return module.main(argv[1:])
