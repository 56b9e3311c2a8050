"""The ultralytics package as a trainer: its model argument, and the environment that keeps it offline.

ultralytics downloads Arial.ttf into its config folder when a plot needs it, syncs settings and events,
checks PyPI for a newer version, and downloads yolo26n.pt for its AMP check. The launcher gives it a
config folder of its own (YOLO_CONFIG_DIR) with matplotlib's DejaVuSans under the font names it asks for,
sets YOLO_OFFLINE=1 (no events, hub or version check) and turns settings sync off in the trainer process;
YololakeTrainer skips the AMP check when its weights are absent. Weights are never fetched: a `.pt` must be
a local file, and model names resolve to the model YAMLs ultralytics ships (training from scratch).
"""
from __future__ import annotations

import os

from yololake.errors import UsageError


def model_arg(model: str) -> str:
    """--model for ultralytics: a local .pt, a model YAML path, or a YAML ultralytics ships (yolo11n -> yolo11n.yaml)."""
    if model.endswith(".pt"):
        if not os.path.isfile(model):
            raise UsageError(f"--model {model}: file not found; this launcher never downloads weights, so copy the "
                             ".pt file to this machine, or pass a model YAML (e.g. yolo11n.yaml) to train from scratch")
        return os.path.abspath(model)
    name = model if model.endswith((".yaml", ".yml")) else f"{model}.yaml"
    if os.path.isfile(name):
        return os.path.abspath(name)
    from ultralytics.nn.tasks import yaml_model_load

    try:
        yaml_model_load(name)
    except (FileNotFoundError, OSError):
        raise UsageError(f"--model {model}: not a model YAML that ultralytics ships (e.g. yolo11n.yaml, "
                         "yolov8s.yaml) nor a local .yaml or .pt file") from None
    return name


def config_dir(base: str) -> str:
    """YOLO_CONFIG_DIR for the trainer: its `Ultralytics/` folder holds the fonts it would otherwise download."""
    from yololake.train.yolov5_env import copy_fonts

    folder = os.path.join(base, "ultralytics_config")
    copy_fonts(os.path.join(folder, "Ultralytics"))
    return folder


def version() -> str:
    from importlib.metadata import version as installed

    return installed("ultralytics")
