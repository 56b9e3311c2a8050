"""Prebuild YOLOv5's label cache (`train.cache` beside `train.txt`) without opening a single image.

YOLOv5 (utils/dataloaders.py, LoadImagesAndLabels) accepts a cache when its `version` is 0.6 and its
`hash` equals get_hash(label_files + im_files): sha256 of the total byte size of those files (os.path.getsize,
which follows image symlinks) followed by all their paths joined. Otherwise it rescans: it opens every
image with PIL to read its size, which takes hours at millions of images. We write the same dict its
cache_labels() would: per image `[labels float32 (n, 5), (width, height), segments]`, then `hash`,
`results` (found, missing, empty, corrupt, total), `msgs`, `version`. Image sizes come from the frame
index; labels are parsed the way verify_image_label parses them.
Known difference: YOLOv5 swaps width/height of JPEGs with an EXIF rotation tag; the index holds the
stored size. A rejected cache only costs YOLOv5's own scan.
"""
from __future__ import annotations

import hashlib
import os
import stat

import numpy as np
import pyarrow.parquet as pq

from yololake.dataset import layout as L
from yololake.storage import atomic_file

CACHE_VERSION = 0.6


def list_images(list_file: str) -> list[str]:
    """The image paths YOLOv5 derives from a list file (its LoadImagesAndLabels.__init__, one list file)."""
    parent = os.path.dirname(list_file) + os.sep
    with open(list_file) as f:
        lines = f.read().strip().splitlines()
    files = [x.replace("./", parent, 1) if x.startswith("./") else x for x in lines]
    return sorted(x.replace("/", os.sep) for x in files if x.split(".")[-1].lower() in L.YOLO_IMAGE_FORMATS)


def label_path(image: str) -> str:
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return sb.join(image.rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt"


def _stat_all(paths: list[str]) -> dict[str, os.stat_result]:
    """One stat per file (following symlinks, as os.path.getsize does); absent files are left out."""
    found = {}
    for p in paths:
        try:
            found[p] = os.stat(p)
        except OSError:
            pass
    return found


def get_hash(paths: list[str], stats: dict[str, os.stat_result] | None = None) -> str:
    """YOLOv5's get_hash: sha256 of the total size of the existing files, then of all paths joined."""
    stats = _stat_all(paths) if stats is None else stats
    size = sum(stats[p].st_size for p in paths if p in stats)
    h = hashlib.sha256(str(size).encode())
    h.update("".join(paths).encode())
    return h.hexdigest()


def read_sizes(dataset_root: str) -> dict[str, tuple[int, int]]:
    """images/<split>/<shard>/<key>.<ext> -> (width, height), from the frame index."""
    t = pq.read_table(os.path.join(dataset_root, L.INDEX),
                      columns=["split", "shard", "key", "ext", "width", "height"]).to_pydict()
    return {L.image_file(sp, sh, k, e): (int(w), int(h))
            for sp, sh, k, e, w, h in zip(t["split"], t["shard"], t["key"], t["ext"], t["width"], t["height"])}


def _read_text(path: str) -> str:
    """The file's text as YOLOv5's open(path).read() gives it (universal newlines), without TextIOWrapper's cost."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode().replace("\r\n", "\n").replace("\r", "\n")


def _parse_label(args):
    """(image, label file, (w, h) or None) -> YOLOv5's verify_image_label outcome, image unopened."""
    im_file, lb_file, shape, im_exists, lb_is_file = args
    try:
        if shape is None:
            raise ValueError("image not in the frame index")
        if not im_exists:
            raise FileNotFoundError(f"No such file or directory: '{im_file}'")
        assert (shape[0] > 9) & (shape[1] > 9), f"image size {shape} <10 pixels"
        if not lb_is_file:
            return im_file, np.zeros((0, 5), dtype=np.float32), shape, 1, 0, 0, 0, ""
        lb = [x.split() for x in _read_text(lb_file).strip().splitlines() if len(x)]
        if any(len(x) > 6 for x in lb):
            raise ValueError("segment labels are not produced by yololake")
        lb = np.array(lb, dtype=np.float32)
        if not len(lb):
            return im_file, np.zeros((0, 5), dtype=np.float32), shape, 0, 1, 1, 0, ""
        assert lb.shape[1] == 5, f"labels require 5 columns, {lb.shape[1]} columns detected"
        assert (lb >= 0).all(), f"negative label values {lb[lb < 0]}"
        assert (lb[:, 1:] <= 1).all(), f"non-normalized or out of bounds coordinates {lb[:, 1:][lb[:, 1:] > 1]}"
        msg = ""
        # Exact duplicate rows are rare: a set of row bytes finds them cheaply, then YOLOv5's own np.unique.
        _, i = np.unique(lb, axis=0, return_index=True) if len({r.tobytes() for r in lb}) < len(lb) else (0, lb)
        if len(i) < len(lb):
            msg = f"WARNING ⚠️ {im_file}: {len(lb) - len(i)} duplicate labels removed"
            lb = lb[i]
        return im_file, lb, shape, 0, 1, 0, 0, msg
    except Exception as e:  # noqa: BLE001 - YOLOv5 counts any failure as a corrupt image/label
        return None, None, None, 0, 0, 0, 1, f"WARNING ⚠️ {im_file}: ignoring corrupt image/label: {e}"


def build(list_file: str, dataset_root: str, sizes: dict[str, tuple[int, int]]) -> dict:
    """Write `<list file stem>.cache` for `list_file` (as YOLOv5 resolves it) and return its summary.

    Skips writing when a cache with the same hash and version is already there.
    """
    list_file = os.path.realpath(list_file)  # YOLOv5 resolves the YAML's paths
    root = os.path.realpath(dataset_root) + os.sep
    im_files = list_images(list_file)
    label_files = [label_path(x) for x in im_files]
    cache_path = os.path.splitext(list_file)[0] + ".cache"
    stats = _stat_all(label_files + im_files)
    digest = get_hash(label_files + im_files, stats)
    if os.path.exists(cache_path):
        try:
            old = np.load(cache_path, allow_pickle=True).item()
            if old["version"] == CACHE_VERSION and old["hash"] == digest:
                return {"path": cache_path, "results": old["results"], "written": False}
        except Exception:  # noqa: BLE001, S110 - an unreadable old cache is simply replaced
            pass
    jobs = [(im, lb, sizes.get(im[len(root):].replace(os.sep, "/")) if im.startswith(root) else None,
             im in stats, lb in stats and stat.S_ISREG(stats[lb].st_mode)) for im, lb in zip(im_files, label_files)]
    x, msgs, nm, nf, ne, nc = {}, [], 0, 0, 0, 0
    # One thread: parsing small local files is bound by the interpreter, and a pool's per-item cost is
    # larger than the work (measured with scripts/bench_label_cache.py).
    for im_file, lb, shape, nm_f, nf_f, ne_f, nc_f, msg in map(_parse_label, jobs):
        nm, nf, ne, nc = nm + nm_f, nf + nf_f, ne + ne_f, nc + nc_f
        if im_file:
            x[im_file] = [lb, shape, []]
        if msg:
            msgs.append(msg)
    x["hash"] = digest
    x["results"] = nf, nm, ne, nc, len(im_files)
    x["msgs"] = msgs
    x["version"] = CACHE_VERSION
    with atomic_file(cache_path, suffix=".npy") as tmp:  # np.save adds .npy to a name without it
        np.save(tmp, x)
    return {"path": cache_path, "results": x["results"], "written": True}
