"""Prebuild the `ultralytics` label cache (YOLOv8 / YOLO11) from the frame index, without opening an image.

ultralytics (data/dataset.py, YOLODataset.get_labels) keeps one cache per split, at the first label file's
folder with `.cache` added (`labels/train/00000.cache`), and accepts it when its `version` is the installed
DATASET_CACHE_VERSION and its `hash` is the dataset's get_cache_hash() (per file: path, size and mtime, then
the scan settings). Otherwise it opens every image again and writes the cache itself. We write the dict its
cache_labels() would: `labels` (per image: im_file, shape (h, w) as displayed, cls, bboxes, segments,
keypoints, normalized, bbox_format), `hash`, `results`, `msgs`, `version`. The hash is computed by the
installed ultralytics' own get_cache_hash, so a change of recipe is followed; a change of version is
reported in one line and the cache is left to ultralytics.

The cache always lands in a folder of our own (the staged copy, or the in-place shadow folder whose label
shard folders link to the dataset's): never in the built dataset.
"""
from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np

from yololake.storage import atomic_file
from yololake.train import label_cache

KNOWN_VERSIONS = ("1.0.12",)
"""The cache versions whose format this module writes (checked against the installed ultralytics at run time)."""


def installed_version() -> tuple[str, str]:
    """(ultralytics version, its DATASET_CACHE_VERSION)."""
    import ultralytics
    from ultralytics.data.dataset import DATASET_CACHE_VERSION

    return ultralytics.__version__, DATASET_CACHE_VERSION


def cache_hash(im_files: list[str], label_files: list[str], names, single_cls: bool = False) -> str:
    """ultralytics' own YOLODataset.get_cache_hash for a detection dataset with these files."""
    from ultralytics.data.dataset import YOLODataset

    names = dict(enumerate(names)) if isinstance(names, list) else names
    dataset = SimpleNamespace(data={"names": names}, im_files=im_files, label_files=label_files,
                              use_keypoints=False, single_cls=single_cls)
    return YOLODataset.get_cache_hash(dataset)


def _label(im_file: str, lb, entry, nc: int) -> tuple[dict | None, str]:
    """One ultralytics label dict (or None and the message for an image it would call corrupt)."""
    if len(lb) and lb[:, 0].max() >= nc:
        max_cls = int(lb[:, 0].max())
        return None, (f"{im_file}: ignoring corrupt image/label: Label class {max_cls} exceeds dataset class count "
                      f"{nc}. Possible class labels are 0-{nc - 1}")
    width, height = entry.displayed
    return {"im_file": im_file, "shape": (height, width), "cls": lb[:, 0:1], "bboxes": lb[:, 1:],
            "segments": [], "keypoints": None, "normalized": True, "bbox_format": "xywh"}, ""


def build(list_file: str, dataset_root: str, index: dict, names: list) -> dict:
    """Write ultralytics' cache for the split `list_file` lists (as ultralytics resolves it); its summary.

    `dataset_root`: the folder the list's `./images/...` lines resolve in (it has the index's layout).
    Returns {"path", "results", "written"} like label_cache.build, or {"skipped": reason} when the installed
    ultralytics uses a cache version this module does not write.
    """
    package, version = installed_version()
    list_file = os.path.realpath(list_file)  # check_det_dataset resolves the YAML's paths
    im_files = label_cache.list_images(list_file)
    label_files = [label_cache.label_path(x) for x in im_files]
    cache_path = os.path.dirname(label_files[0]) + ".cache"
    if version not in KNOWN_VERSIONS:
        return {"path": cache_path, "skipped": f"ultralytics {package} uses label cache version {version}, not "
                f"{'/'.join(KNOWN_VERSIONS)} that yololake writes: it will scan the images itself"}
    stats = label_cache.stat_all(label_files + im_files)
    entries = label_cache.index_entries(im_files, dataset_root, index)
    label_cache.check_image_bytes(im_files, entries, stats)
    digest = cache_hash(im_files, label_files, names)
    if (current := label_cache.up_to_date(cache_path, version, digest)) is not None:
        return current
    labels, msgs, nm, nf, ne, nc = [], [], 0, 0, 0, 0
    for (im_file, lb, _, nm_f, nf_f, ne_f, nc_f, msg), entry in zip(
            label_cache.parse_all(im_files, label_files, dataset_root, entries, stats), entries):
        if im_file:
            label, msg_c = _label(im_file, lb, entry, len(names))
            if label is None:  # ultralytics counts it found and corrupt
                nc_f, msg = 1, msg_c
            else:
                labels.append(label)
        nm, nf, ne, nc = nm + nm_f, nf + nf_f, ne + ne_f, nc + nc_f
        if msg:
            msgs.append(msg.replace("WARNING ⚠️ ", ""))
    x = {"labels": labels, "hash": digest, "results": (nf, nm, ne, nc, len(im_files)), "msgs": msgs,
         "version": version}
    with atomic_file(cache_path, suffix=".npy") as tmp:
        np.save(tmp, x)
    return {"path": cache_path, "results": x["results"], "written": True}
