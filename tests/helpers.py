"""Shared test helpers: the published content of an output, local or on S3."""
from __future__ import annotations

import os
from pathlib import Path

from yololake.dataset.layout import DATASET_YAML, read_version, version_folder
from yololake.dataset.versions import current_folder

RUN_SPECIFIC = ("_SUCCESS", "_yololake_run.json", "stats.json", "dataset.yaml", "_heartbeat")


def published_local(out: str) -> dict[str, bytes | str]:
    """Everything a reader uses of the current version, as {relative path: bytes, or link target};
    run-specific files left out."""
    out = current_folder(out)
    tree = {}
    for folder, _, files in os.walk(out):
        rel = os.path.relpath(folder, out)
        for name in files:
            path = os.path.join(folder, name)
            if (rel == "." and name in RUN_SPECIFIC) or name.endswith(".crc"):
                continue
            tree[os.path.normpath(os.path.join(rel, name))] = (
                os.readlink(path) if os.path.islink(path) else Path(path).read_bytes())
    return tree


def s3_version(fs, root: str) -> str:
    """The current version folder of a versioned output on S3 (bucket/prefix form); any other folder as it is."""
    root = root.rstrip("/")
    fs.invalidate_cache()
    pointer = f"{root}/{DATASET_YAML}"
    version = read_version(fs.cat_file(pointer)) if fs.exists(pointer) else ""
    return f"{root}/{version_folder(version)}" if version else root


def published_s3(fs, root: str) -> dict[str, bytes]:
    root = s3_version(fs, root)
    tree = {}
    for path in fs.find(root):
        rel = path[len(root) + 1:]
        if rel not in RUN_SPECIFIC:
            tree[rel] = fs.cat_file(path)
    return tree
