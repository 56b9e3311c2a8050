"""The output folder's life cycle: claim it, publish the driver-side files, commit with `_SUCCESS` last.

A reader takes a folder for a dataset only when `_SUCCESS` exists; it is written after everything else.
"""
from __future__ import annotations

import datetime as dt
import glob
import json
import os
import shutil
import uuid
from collections.abc import Iterable

import yaml

SUCCESS = "_SUCCESS"
RUN_MARKER = "_yololake_run.json"
LISTS = "_lists"


class OutputExistsError(RuntimeError):
    """--out already holds a dataset, or something that is not ours."""


def local_out(uri: str) -> str:
    """The absolute local path of --out (file:// or a plain path)."""
    if uri.startswith("file://"):
        uri = uri[len("file://"):]
    elif "://" in uri:
        raise OutputExistsError(f"--out {uri}: only local paths and file:// are supported by this version; "
                                "write to a local or mounted folder")
    return os.path.abspath(uri)


def write_text_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path: str, data: object) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def claim(root: str, overwrite: bool, run_info: dict) -> None:
    """Make `root` ours for this run.

    A committed dataset is refused unless `overwrite`; a failed run of ours is cleared; a non-empty
    folder that is not ours is never touched.
    """
    if os.path.isdir(root) and os.listdir(root):
        committed = os.path.exists(os.path.join(root, SUCCESS))
        ours = committed or os.path.exists(os.path.join(root, RUN_MARKER))
        if committed and not overwrite:
            raise OutputExistsError(f"--out {root} already holds a committed dataset ({SUCCESS} exists); "
                                    "pass --overwrite to replace it, or choose another --out")
        if not ours:
            raise OutputExistsError(f"--out {root} is not empty and was not written by yololake; "
                                    "choose an empty or new folder")
        # Uncommit first, so an interrupted clean-up never leaves a folder that looks committed.
        if committed:
            os.remove(os.path.join(root, SUCCESS))
        for name in os.listdir(root):
            path = os.path.join(root, name)
            if name == RUN_MARKER:
                continue
            shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)
    os.makedirs(root, exist_ok=True)
    write_json(os.path.join(root, RUN_MARKER),
               {**run_info, "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})


def sweep_temporaries(root: str) -> None:
    """Remove hidden per-attempt folders that a killed task attempt may have left (shard level only)."""
    for kind in ("labels", "images"):
        for stale in glob.glob(os.path.join(glob.escape(root), kind, "*", ".*.tmp-*")):
            shutil.rmtree(stale, ignore_errors=True)


def publish_list(root: str, split: str) -> str:
    """Concatenate the per-shard list files of `split` (shard order) into `<split>.txt`; stream, no buffering."""
    target = os.path.join(root, f"{split}.txt")
    parts = sorted(glob.glob(os.path.join(glob.escape(root), LISTS, split, "*.txt")))
    tmp = f"{target}.tmp-{uuid.uuid4().hex}"
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    os.replace(tmp, target)
    return target


def dataset_yaml(root: str, names: Iterable[str], splits: Iterable[str]) -> str:
    """The YOLOv5 dataset YAML: absolute `path:` (YOLOv5 resolves relative ones against its install dir)."""
    names = list(names)
    doc = {"path": root, **{split: f"{split}.txt" for split in splits}, "nc": len(names), "names": names}
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def commit(root: str, summary: dict) -> None:
    shutil.rmtree(os.path.join(root, LISTS), ignore_errors=True)
    write_json(os.path.join(root, SUCCESS), summary)
