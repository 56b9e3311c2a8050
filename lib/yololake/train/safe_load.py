"""Checkpoints are not code: torch.load with weights_only=True and an allowlist of the trainer's own classes.

In the trainer process (`install`), every torch.load runs with weights_only=True (TORCH_FORCE_WEIGHTS_ONLY_LOAD,
which also overrides ultralytics' explicit weights_only=False), and `torch.serialization.add_safe_globals`
allows the classes a checkpoint of that trainer holds: the model and module classes of the trainer's own
package (yolov5.models, ultralytics.nn), torch.nn's modules, and a few plain types its checkpoints carry.
A checkpoint that needs any other global is refused in one line naming it; the launcher checks `--weights`
and a `.pt` `--model` the same way before it starts anything (`refusal`), statically, without unpickling.
`--trust-weights` is the explicit opt-out for files the user trusts: full unpickling, as before torch 2.6.

    python -m yololake.train.safe_load yolov5 -m yolov5.train ARGS   (or a clone's train.py instead of -m ...)
"""
from __future__ import annotations

import importlib
import os
import pickle
import pkgutil
import re
import runpy
import sys
import warnings
from collections.abc import Sequence

TRUST_ENV = "YOLOLAKE_TRUST_WEIGHTS"
PACKAGES = {"yolov5": ("yolov5.models",), "yolov5-clone": ("models",), "ultralytics": ("ultralytics.nn.modules", "ultralytics.nn.tasks")}
"""Per trainer, the packages whose classes (models, layers) its checkpoints pickle (a YOLOv5 clone: `models`)."""
EXTRA = {"yolov5": (), "yolov5-clone": (), "ultralytics": (("ultralytics.utils", "IterableSimpleNamespace"),)}
COMMON = (("torch.nn.modules", None), ("argparse", "Namespace"), ("types", "SimpleNamespace"),
          ("pathlib", "PosixPath"), ("builtins", "getattr"), ("numpy._core.multiarray", "scalar"),
          ("numpy", "dtype"), ("numpy.dtypes", "Float64DType"), ("numpy.dtypes", "Float32DType"))
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def _classes(package: str) -> list:
    """Every class defined in `package` and its submodules (imported; a submodule that fails is skipped)."""
    found, names = [], [package]
    with warnings.catch_warnings():  # e.g. YOLOv5's pkg_resources deprecation: not ours to print
        warnings.simplefilter("ignore")
        root = importlib.import_module(package)
        if hasattr(root, "__path__"):
            names += [m.name for m in pkgutil.walk_packages(root.__path__, f"{package}.")]
        for name in names:
            try:
                module = importlib.import_module(name)
            except Exception:  # noqa: BLE001, S112 - optional submodules (extra dependencies) are not allowlisted
                continue
            found += [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == name]
    return found


def allowlist(trainer: str) -> list:
    """The globals a checkpoint of `trainer` may need, as objects for add_safe_globals."""
    objects = []
    for package in PACKAGES[trainer]:
        objects += _classes(package)
    for module, name in EXTRA[trainer] + COMMON:
        if name is None:
            objects += _classes(module)
            continue
        try:
            objects.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            pass
    return objects


def trusted() -> bool:
    return os.environ.get(TRUST_ENV) == "1"


def install(trainer: str) -> None:
    """In the trainer process, before anything loads: weights_only everywhere, the allowlist, one-line refusals."""
    if trusted():
        return
    import torch

    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    torch.serialization.add_safe_globals(allowlist(trainer))
    previous = sys.excepthook

    def refuse(kind, exc, tb):
        name = refused_global(exc)
        if name is None:
            return previous(kind, exc, tb)
        print(f"yololake: {message(name, trainer)}", file=sys.stderr, flush=True)
        os._exit(2)

    sys.excepthook = refuse


def refused_global(exc: BaseException | None) -> str | None:
    """The global a weights-only load refused, anywhere in the exception's chain."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, pickle.UnpicklingError) and (m := _GLOBAL.search(str(exc))):
            return m.group(1)
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def message(name: str, trainer: str, path: str = "") -> str:
    where = f"{path}: " if path else ""
    return (f"checkpoint {where}refused: it needs {name}, which is not one of the {trainer} trainer's "
            "model and module classes (loaded with weights_only=True); pass --trust-weights only if you trust this file")


def refusal(path: str, trainer: str) -> str | None:
    """The one-line refusal for a checkpoint that needs a global outside the allowlist (nothing is unpickled)."""
    if trusted() or not path or not path.endswith(".pt"):
        return None
    import torch

    torch.serialization.add_safe_globals(allowlist(trainer))
    unsafe = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    return message(", ".join(unsafe), trainer, path) if unsafe else None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    trainer, target, args = argv[0], argv[1:3] if argv[1] == "-m" else argv[1:2], argv[3 if argv[1] == "-m" else 2:]
    if target[0] != "-m":  # a clone's script: its folder first on the path, as `python train.py` would have it
        sys.path.insert(0, os.path.dirname(os.path.abspath(target[0])))
        trainer = f"{trainer}-clone"
    install(trainer)
    sys.argv = [target[-1], *args]
    if target[0] == "-m":
        runpy.run_module(target[1], run_name="__main__", alter_sys=True)
    else:
        runpy.run_path(target[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
