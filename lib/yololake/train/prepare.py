"""Put the dataset where the trainer reads it: a local folder, the YAML it loads, and prebuilt label caches.

A staged copy is prepared in place (YAML and caches beside its list files, or in its labels/ folder for
ultralytics). A local dataset used without staging is never written to. For YOLOv5 its list files are
rewritten with absolute image paths into a prepared folder under the stage dir, and the YAML and caches go
there (YOLOv5 saves a cache beside its list file). ultralytics saves its cache beside the first label
shard (`labels/<split>/00000.cache`), so for it the prepared folder is a shadow tree: the list files as
they are, and `images/<split>/<shard>` and `labels/<split>/<shard>` links to the dataset's shard folders;
its caches are real files in the shadow tree's `labels/<split>/`.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

from yololake.dataset import layout as L
from yololake.errors import DatasetError
from yololake.storage import atomic_file, atomic_write
from yololake.train import label_cache, ultralytics_cache
from yololake.train.manifest import archived, fingerprint
from yololake.train.stage import Source, stage

YAML_NAME = "yololake_data.yaml"
TRAINERS = ("yolov5", "ultralytics")


@dataclass(frozen=True)
class Prepared:
    source: Source
    root: str
    """The local dataset folder the trainer reads images and labels from."""
    yaml_path: str
    staged: bool
    fingerprint: str
    caches: dict


def plan_folder(source: Source, stage_root: str, copy: bool, trainer: str = "yolov5") -> str:
    """Where the YAML will be: known before any copying, so --dry-run can print exact commands."""
    if copy:
        return os.path.join(stage_root, source.folder_name)
    return os.path.join(stage_root, f"{source.folder_name}-inplace" + ("" if trainer == "yolov5" else f"-{trainer}"))


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


def _link(target: str, link: str) -> None:
    """`link` -> `target`, replaced in one step when it points elsewhere."""
    if os.path.islink(link) and os.readlink(link) == target:
        return
    os.makedirs(os.path.dirname(link), exist_ok=True)
    tmp = f"{link}.tmp-{uuid.uuid4().hex}"
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _shadow_tree(source_root: str, folder: str, splits: list[str]) -> None:
    """The list files and shards.json copied, and each split's shard folders of images and labels linked."""
    real = os.path.realpath(source_root)
    for name in [L.SHARDS_JSON] + [L.list_file(s) for s in splits]:
        with open(os.path.join(real, name), "rb") as src:
            atomic_write(os.path.join(folder, name), src.read())
    for tree in (L.IMAGES, L.LABELS):
        for split in splits:
            parent = os.path.join(real, tree, split)
            for shard in sorted(os.listdir(parent)) if os.path.isdir(parent) else []:
                if os.path.isdir(os.path.join(parent, shard)):
                    _link(os.path.join(parent, shard), os.path.join(folder, tree, split, shard))


def _caches(trainer: str, folder: str, root: str, splits: list[str], names: list) -> dict:
    """Each split's prebuilt cache: YOLOv5's beside its list file, or ultralytics' in the labels/ folder."""
    index = label_cache.read_index(root)
    if trainer == "ultralytics":
        return {s: ultralytics_cache.build(os.path.join(folder, L.list_file(s)), folder, index, names)
                for s in splits}
    return {s: label_cache.build(os.path.join(folder, L.list_file(s)), root, index) for s in splits}


def prepare(source: Source, stage_root: str, mode: str = "auto", workers: int = 16, progress: bool = True,
            min_free_bytes: int = 0, on_file=None, trainer: str = "yolov5") -> Prepared:
    copy = should_copy(source, mode)
    if copy:
        root = stage(source, stage_root, workers, progress, on_file, min_free_bytes).root
        folder = root
    else:
        if not source.is_local:
            raise DatasetError(f"--data {source.url} is not a local folder; YOLOv5 reads local files only: "
                             "use --stage auto or always")
        root = source.path
        folder = plan_folder(source, stage_root, copy=False, trainer=trainer)
        os.makedirs(folder, exist_ok=True)
    splits = [s for s in L.SPLITS if os.path.exists(os.path.join(root, L.list_file(s)))]
    if not copy and trainer == "ultralytics":
        _shadow_tree(root, folder, splits)
    elif not copy:
        _absolute_lists(root, folder, splits)
    yaml_path = write_yaml(folder, source.names, splits)
    caches = _caches(trainer, folder, root, splits, source.names)
    return Prepared(source, root, yaml_path, copy, fingerprint(root), caches)
