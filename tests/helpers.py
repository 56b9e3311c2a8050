"""Shared test helpers: the published content of an output, local or on S3."""
from __future__ import annotations

import os
from pathlib import Path

RUN_SPECIFIC = ("_SUCCESS", "_yololake_run.json", "stats.json", "dataset.yaml")


def published_local(out: str) -> dict[str, bytes | str]:
    """Everything a reader uses, as {relative path: bytes, or link target}; run-specific files left out."""
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


def published_s3(fs, root: str) -> dict[str, bytes]:
    root = root.rstrip("/")
    tree = {}
    for path in fs.find(root):
        rel = path[len(root) + 1:]
        if rel not in RUN_SPECIFIC:
            tree[rel] = fs.cat_file(path)
    return tree
