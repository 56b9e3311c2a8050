"""What a dataset version is made of: its input files, its normalised config and the yololake version.

Computed on the driver before Spark starts, from file listings only (path, size, and mtime or ETag; no
file is read), so an unchanged rerun is recognised in a second. The images are not listed: a lake may hold
millions, and their existence is checked by the build itself. A run after images changed but tables did not
needs `--force`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
from collections.abc import Iterable

from yololake.build.config import JobConfig
from yololake.build.plan import JobInputs
from yololake.config import StorageConfig
from yololake.errors import InputError, StorageError
from yololake.storage import describe_error, filesystem, local_path

_NOT_DATA = ("spark", "spark_ui_bind", "storage")
"""Config sections that change how a build runs, never what it writes."""


def _local_files(root: str) -> Iterable[tuple[str, int, str]]:
    if os.path.isfile(root):
        st = os.stat(root)
        yield os.path.abspath(root), st.st_size, str(st.st_mtime_ns)
        return
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            st = os.stat(path)
            yield os.path.abspath(path), st.st_size, str(st.st_mtime_ns)


def _remote_files(url: str, storage: StorageConfig) -> Iterable[tuple[str, int, str]]:
    fs, path = filesystem(url, storage)
    try:
        fs.invalidate_cache(path)
        found = fs.find(path, detail=True)
    except OSError as exc:
        raise StorageError(f"cannot list {url}: {describe_error(exc)}") from None
    for name, info in sorted(found.items()):
        stamp = info.get("ETag") or info.get("mtime") or info.get("LastModified") or ""
        yield fs.unstrip_protocol(name), int(info.get("size") or 0), str(stamp)


def input_files(paths: Iterable[str], storage: StorageConfig) -> list[tuple[str, int, str]]:
    """(path, size, mtime or ETag) of every file under the input paths, in a stable order."""
    files = []
    for uri in paths:
        local = local_path(uri)
        if local is not None and not os.path.exists(local):
            raise InputError(f"input path {uri} does not exist; check --annotations and --frames")
        files += _local_files(local) if local is not None else _remote_files(uri, storage)
    return files


def normalised_config(config: JobConfig) -> dict:
    return {k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_DATA}


def compute(job: JobConfig, inputs: JobInputs) -> dict:
    """The version's fingerprint: `digest` (what reruns compare) and a summary of what went into it."""
    files = input_files([*inputs.annotations, *inputs.frames], job.storage)
    config_text = json.dumps(normalised_config(job), sort_keys=True, default=list)
    version = importlib.metadata.version("yololake")
    digest = hashlib.sha256()
    for path, size, stamp in files:
        digest.update(f"{path}\0{size}\0{stamp}\n".encode())
    digest.update(b"\0config\0" + config_text.encode() + b"\0images\0" + str(inputs.images or "").encode())
    digest.update(b"\0yololake\0" + version.encode())
    return {"digest": digest.hexdigest(), "files": len(files), "bytes": sum(f[1] for f in files),
            "config_sha256": hashlib.sha256(config_text.encode()).hexdigest(), "yololake": version,
            "inputs": {"annotations": list(inputs.annotations), "frames": list(inputs.frames),
                       "images": inputs.images}}
