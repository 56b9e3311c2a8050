"""The ultralytics trainer process: `python -m yololake.train.ultralytics_run MODE key=value ...`.

MODE is train, val or predict; the pairs are ultralytics' own arguments (as its `yolo` command takes them,
values parsed as YAML). Run by `yololake train/val/detect --trainer ultralytics`, alone or under torchrun.
Before ultralytics loads anything: checkpoints load with weights_only=True and the allowlist of ultralytics'
own classes (safe_load), settings sync is off, and training uses YololakeTrainer (global rank and world).
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

import yaml

MODES = ("train", "val", "predict")


def parse_pairs(pairs: Sequence[str]) -> dict:
    """key=value arguments (ultralytics' CLI form) -> kwargs; a value is read as YAML (1, 0.5, true, a path)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"yololake: {pair!r}: ultralytics arguments are key=value (e.g. lr0=0.01)")
        out[key] = yaml.safe_load(value) if value else ""
    return out


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in MODES:
        raise SystemExit(f"usage: python -m yololake.train.ultralytics_run {{{','.join(MODES)}}} key=value ...")
    mode, kwargs = argv[0], parse_pairs(argv[1:])
    from yololake.train import safe_load

    safe_load.install("ultralytics")
    from ultralytics import YOLO
    from ultralytics.utils import SETTINGS

    if SETTINGS.get("sync"):
        SETTINGS.update({"sync": False})  # no analytics; YOLO_OFFLINE also keeps hub and version checks off
    model = YOLO(kwargs.pop("model"))
    if mode == "train":
        from yololake.train.ultralytics_trainer import YololakeTrainer

        model.train(trainer=YololakeTrainer, **kwargs)
    elif mode == "val":
        model.val(**kwargs)
    else:
        model.predict(save=True, stream=False, **kwargs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
