"""Where YOLOv5 is (the pip package or a clone) and the environment that keeps it offline.

YOLOv5 downloads Arial.ttf at start unless its config folder (YOLOV5_CONFIG_DIR) has one; any TTF will
do, so we put matplotlib's DejaVuSans there under both names it asks for. Weights are never fetched:
a weights file must exist locally (checked before launch), and the Hugging Face / Ultralytics hubs
are switched to offline mode. Checkpoints load with weights_only=True and an allowlist (safe_load); with
`trust=True` (--trust-weights) TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 restores full unpickling instead.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys

from yololake.errors import UsageError

FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")


def locate(yolov5_dir: str = "") -> str:
    """The folder holding train.py, detect.py, val.py and models/."""
    if yolov5_dir:
        folder = os.path.abspath(os.path.expanduser(yolov5_dir))
        if not os.path.isfile(os.path.join(folder, "train.py")):
            raise UsageError(f"--yolov5-dir {yolov5_dir}: no train.py there; point it at a clone of "
                             "ultralytics/yolov5, or drop it to use the pip package")
        return folder
    spec = importlib.util.find_spec("yolov5")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("the yolov5 package is not installed; `pip install -e .[train]` or pass --yolov5-dir")
    return next(iter(spec.submodule_search_locations))


def script(yolov5_dir: str, name: str) -> list[str]:
    """How to run YOLOv5's `name`.py: `-m yolov5.<name>` for the package, the file for a clone."""
    return [os.path.join(yolov5_dir, f"{name}.py")] if yolov5_dir else ["-m", f"yolov5.{name}"]


def model_cfg(model: str, folder: str) -> str:
    if model.endswith((".yaml", ".yml")):
        if not os.path.isfile(model):
            raise UsageError(f"--model {model}: no such model YAML")
        return os.path.abspath(model)
    path = os.path.join(folder, "models", f"{model}.yaml")
    if not os.path.isfile(path):
        known = sorted(n[:-5] for n in os.listdir(os.path.join(folder, "models")) if n.startswith("yolov5"))
        raise UsageError(f"--model {model}: not a YOLOv5 model ({', '.join(known[:8])}...) nor a model YAML path")
    return path


def check_weights(weights: str) -> str:
    """'' (from scratch) or an existing local file: YOLOv5 would otherwise try to download it."""
    if not weights:
        return ""
    if not os.path.isfile(weights):
        raise UsageError(f"--weights {weights}: file not found; this launcher never downloads weights, so copy "
                         "the .pt file to this machine and pass its path, or pass --weights '' to train from scratch")
    return os.path.abspath(weights)


def copy_fonts(folder: str) -> str:
    """matplotlib's DejaVuSans in `folder` under the font names YOLOv5 and ultralytics would download."""
    import matplotlib

    os.makedirs(folder, exist_ok=True)
    font = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf", "DejaVuSans.ttf")
    for name in FONT_NAMES:
        if not os.path.exists(os.path.join(folder, name)):
            shutil.copyfile(font, os.path.join(folder, name))
    return folder


def config_dir(base: str) -> str:
    """A YOLOv5 config folder holding the fonts it would otherwise download."""
    return copy_fonts(os.path.join(base, "yolov5_config"))


def offline_env(base: str, env: dict | None = None, trust: bool = False) -> dict:
    """The trainer's environment (either trainer): offline, fonts in place, and how checkpoints load."""
    from yololake.train import safe_load, ultralytics_env

    env = dict(os.environ if env is None else env)
    env.update({
        "YOLOV5_CONFIG_DIR": config_dir(base),
        "YOLO_CONFIG_DIR": ultralytics_env.config_dir(base),
        "HF_HUB_OFFLINE": "1",
        "YOLO_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    })
    for name in ("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_WEIGHTS_ONLY_LOAD", safe_load.TRUST_ENV):
        env.pop(name, None)
    if trust:  # --trust-weights: the user vouches for the files; full unpickling, as before torch 2.6
        env.update({"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", safe_load.TRUST_ENV: "1"})
    return env


def python() -> str:
    return sys.executable
