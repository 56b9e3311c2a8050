"""Put the dataset where YOLOv5 reads it: a local folder, the YAML it loads, and prebuilt label caches.

A staged copy is prepared in place (YAML and caches beside its list files). A local dataset used without
staging is never written to: its list files are rewritten with absolute image paths into a prepared
folder under the stage dir, and the YAML and caches go there (YOLOv5 saves a cache beside its list file).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from yololake.dataset import layout as L
from yololake.errors import DatasetError
from yololake.storage import atomic_file, atomic_write
from yololake.train import label_cache
from yololake.train.manifest import archived, fingerprint
from yololake.train.stage import Source, stage

YAML_NAME = "yololake_data.yaml"


@dataclass(frozen=True)
class Prepared:
    source: Source
    root: str
    """The local dataset folder the trainer reads images and labels from."""
    yaml_path: str
    staged: bool
    fingerprint: str
    caches: dict


def plan_folder(source: Source, stage_root: str, copy: bool) -> str:
    """Where the YAML will be: known before any copying, so --dry-run can print exact commands."""
    return os.path.join(stage_root, source.folder_name if copy else f"{source.folder_name}-inplace")


def should_copy(source: Source, mode: str) -> bool:
    """Copy non-local datasets (YOLOv5 reads local files only) and shard archives (they must be unpacked)."""
    if mode == "never" and archived(source):
        raise DatasetError(f"--data {source.url} stores its shards as tar archives, which must be unpacked; "
                           "use --stage auto or always")
    return mode == "always" or (mode == "auto" and (not source.is_local or archived(source)))


def write_yaml(folder: str, names: list, splits: list[str]) -> str:
    """The YAML YOLOv5 loads: an absolute `path:` (YOLOv5 resolves relative ones against its install dir)."""
    path = os.path.join(folder, YAML_NAME)
    atomic_write(path, L.dataset_yaml(os.path.realpath(folder), names, splits))
    return path


def _absolute_lists(source_root: str, folder: str, splits: list[str]) -> None:
    real = os.path.realpath(source_root)
    for split in splits:
        with atomic_file(os.path.join(folder, L.list_file(split))) as tmp, \
                open(os.path.join(source_root, L.list_file(split)), encoding="utf-8") as src, \
                open(tmp, "w", encoding="utf-8", newline="\n") as out:
            for line in src:
                line = line.rstrip("\n")
                if line:
                    out.write(f"{real}/{line[2:]}\n" if line.startswith("./") else f"{line}\n")


def prepare(source: Source, stage_root: str, mode: str = "auto", workers: int = 16, progress: bool = True,
            min_free_bytes: int = 0, on_file=None) -> Prepared:
    copy = should_copy(source, mode)
    if copy:
        root = stage(source, stage_root, workers, progress, on_file, min_free_bytes).root
        folder = root
    else:
        if not source.is_local:
            raise DatasetError(f"--data {source.url} is not a local folder; YOLOv5 reads local files only: "
                             "use --stage auto or always")
        root = source.path
        folder = plan_folder(source, stage_root, copy=False)
        os.makedirs(folder, exist_ok=True)
    splits = [s for s in L.SPLITS if os.path.exists(os.path.join(root, L.list_file(s)))]
    if not copy:
        _absolute_lists(root, folder, splits)
    yaml_path = write_yaml(folder, source.names, splits)
    index = label_cache.read_index(root)
    caches = {s: label_cache.build(os.path.join(folder, L.list_file(s)), root, index) for s in splits}
    return Prepared(source, root, yaml_path, copy, fingerprint(root), caches)
