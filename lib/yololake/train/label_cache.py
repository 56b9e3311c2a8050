"""Prebuild YOLOv5's label cache (`train.cache` beside `train.txt`) without opening a single image.

YOLOv5 (utils/dataloaders.py, LoadImagesAndLabels) accepts a cache when its `version` is 0.6 and its
`hash` equals get_hash(label_files + im_files): sha256 of the total byte size of those files (os.path.getsize,
which follows image symlinks) followed by all their paths joined. Otherwise it rescans: it opens every
image with PIL to read its size, which takes hours at millions of images. We write the same dict its
cache_labels() would: per image `[labels float32 (n, 5), (width, height), segments]`, then `hash`,
`results` (found, missing, empty, corrupt, total), `msgs`, `version`.

Both come from the frame index, which the job wrote after reading every image: the labels as
verify_image_label parses them (`yolo_labels`), and the size YOLOv5's exif_size records (the stored size,
sides swapped for EXIF orientation 6 or 8). The label files of a shard are parsed here instead when their
sizes do not add up to the shard's `label_bytes` in shards.json (edited after the build), or when the index
predates those columns. An image whose byte size differs from the index's is refused: the source changed
after the build, and YOLOv5's rescan would rewrite such a JPEG in place (through a link: in the lake).
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from typing import NamedTuple

import numpy as np
import pyarrow.parquet as pq

from yololake.dataset import layout as L
from yololake.errors import DatasetError
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


def stat_all(paths: list[str]) -> dict[str, os.stat_result]:
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
    stats = stat_all(paths) if stats is None else stats
    size = sum(stats[p].st_size for p in paths if p in stats)
    h = hashlib.sha256(str(size).encode())
    h.update("".join(paths).encode())
    return h.hexdigest()


class Entry(NamedTuple):
    shape: tuple[int, int]
    """(width, height) as YOLOv5's exif_size gives it."""
    labels: np.ndarray | None
    """float32 (n, 5) as verify_image_label parses the label file; None: parse the file."""
    image_bytes: int | None
    displayed: tuple[int, int] = (0, 0)
    """(width, height) as displayed (EXIF orientation applied): the size the labels are normalised by."""


def yolov5_shape(width, height, stored_width=None, stored_height=None, orientation=None) -> tuple[int, int]:
    """exif_size: the stored size, sides swapped for EXIF orientation 6 or 8 only (YOLOv5 leaves 5 and 7, the
    mirrored quarter turns, unswapped); the index's width/height when the job did not read the image."""
    if stored_width is None or stored_height is None:
        return int(width), int(height)
    return (int(stored_height), int(stored_width)) if orientation in (6, 8) else (int(stored_width), int(stored_height))


def read_index(dataset_root: str) -> dict[str, Entry]:
    """images/<split>/<shard>/<key>.<ext> -> Entry, from the frame index."""
    folder = os.path.join(dataset_root, L.INDEX)
    present = set(pq.ParquetDataset(folder).schema.names)
    wanted = [c for c in L.INDEX_COLUMNS if c in present and c not in ("frame_id", "source_image", "status")]
    t = pq.read_table(folder, columns=wanted)
    cols = {c: t.column(c).to_pylist() for c in wanted if c != "yolo_labels"}
    n = t.num_rows
    missing = [None] * n
    facts = zip(cols.get("stored_width", missing), cols.get("stored_height", missing), cols.get("orientation", missing))
    labels = _label_arrays(t.column("yolo_labels")) if "yolo_labels" in present else missing
    rows = zip(cols["split"], cols["shard"], cols["key"], cols["ext"], cols["width"], cols["height"], facts, labels,
               cols.get("image_bytes", missing))
    return {L.image_file(sp, sh, k, e): Entry(yolov5_shape(w, h, *f), lb, size, (int(w), int(h)))
            for sp, sh, k, e, w, h, f, lb, size in rows}


def _label_arrays(column) -> list[np.ndarray | None]:
    """A list<float32> column as one (n, 5) view per row, without a Python float per value."""
    column = column.combine_chunks()
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    offsets = column.offsets.to_numpy()
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    return [values[a:b].reshape(-1, 5) if ok else None for a, b, ok in zip(offsets[:-1], offsets[1:], valid)]


def _edited_shards(dataset_root: str, label_files: list[str], stats: dict) -> set[str]:
    """Label folders whose files' sizes do not add up to shards.json's label_bytes (edited after the build)."""
    try:
        with open(os.path.join(dataset_root, L.SHARDS_JSON), encoding="utf-8") as f:
            expected = {L.labels_folder(s["split"], s["shard"]): s.get("label_bytes") for s in json.load(f)}
    except (OSError, ValueError, KeyError, TypeError):
        return {"*"}
    root = os.path.realpath(dataset_root) + os.sep
    found: dict[str, int] = {}
    for lb in label_files:
        folder = os.path.dirname(lb[len(root):]).replace(os.sep, "/") if lb.startswith(root) else "?"
        found[folder] = found.get(folder, 0) + (stats[lb].st_size if lb in stats else 0)
    return {folder for folder, size in found.items() if expected.get(folder) != size}


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
    """(image, label file, index Entry or None, image exists, label is a file, index labels usable) ->
    YOLOv5's verify_image_label outcome, image unopened."""
    im_file, lb_file, entry, im_exists, lb_is_file, use_index = args
    try:
        if entry is None:
            raise ValueError("image not in the frame index")
        shape = entry.shape
        if not im_exists:
            raise FileNotFoundError(f"No such file or directory: '{im_file}'")
        assert (shape[0] > 9) & (shape[1] > 9), f"image size {shape} <10 pixels"
        if not lb_is_file:
            return im_file, np.zeros((0, 5), dtype=np.float32), shape, 1, 0, 0, 0, ""
        if use_index and entry.labels is not None:
            lb = entry.labels
        else:
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


def check_image_bytes(im_files: list[str], entries: list, stats: dict) -> None:
    """Refuse images whose size is not the one the job read: YOLOv5 would rescan them and rewrite in place."""
    changed = [im for im, e in zip(im_files, entries)
               if e is not None and e.image_bytes is not None and im in stats and stats[im].st_size != e.image_bytes]
    if changed:
        raise DatasetError(f"{len(changed)} image(s) differ in size from the dataset's index, e.g. {changed[0]}: "
                           "the source images changed after build-dataset read them; rebuild the dataset")


def index_entries(im_files: list[str], dataset_root: str, index: dict[str, Entry]) -> list[Entry | None]:
    """Each image's index entry, by its path below the dataset root (None: not in the index)."""
    root = os.path.realpath(dataset_root) + os.sep
    return [index.get(im[len(root):].replace(os.sep, "/")) if im.startswith(root) else None for im in im_files]


def parse_all(im_files: list[str], label_files: list[str], dataset_root: str, entries: list, stats: dict) -> list:
    """verify_image_label's outcome for every image, from the index (label files of edited shards parsed)."""
    root = os.path.realpath(dataset_root) + os.sep
    edited = _edited_shards(dataset_root, label_files, stats)
    jobs = [(im, lb, entry, im in stats, lb in stats and stat.S_ISREG(stats[lb].st_mode),
             "*" not in edited and os.path.dirname(lb[len(root):]).replace(os.sep, "/") not in edited)
            for im, lb, entry in zip(im_files, label_files, entries)]
    # One thread: the work per image is a few numpy calls (or parsing one small local file), bound by the
    # interpreter; a pool's per-item cost is larger (measured with scripts/bench_label_cache.py).
    return list(map(_parse_label, jobs))


def up_to_date(cache_path: str, version, digest: str) -> dict | None:
    """The summary of a cache already at `cache_path` with this version and hash; None: (re)write it."""
    if os.path.exists(cache_path):
        try:
            old = np.load(cache_path, allow_pickle=True).item()
            if old["version"] == version and old["hash"] == digest:
                return {"path": cache_path, "results": old["results"], "written": False}
        except Exception:  # noqa: BLE001, S110 - an unreadable old cache is simply replaced
            pass
    return None


def build(list_file: str, dataset_root: str, index: dict[str, Entry]) -> dict:
    """Write `<list file stem>.cache` for `list_file` (as YOLOv5 resolves it) and return its summary.

    Skips writing when a cache with the same hash and version is already there.
    """
    list_file = os.path.realpath(list_file)  # YOLOv5 resolves the YAML's paths
    im_files = list_images(list_file)
    label_files = [label_path(x) for x in im_files]
    cache_path = os.path.splitext(list_file)[0] + ".cache"
    stats = stat_all(label_files + im_files)
    entries = index_entries(im_files, dataset_root, index)
    check_image_bytes(im_files, entries, stats)
    digest = get_hash(label_files + im_files, stats)
    if (current := up_to_date(cache_path, CACHE_VERSION, digest)) is not None:
        return current
    x, msgs, nm, nf, ne, nc = {}, [], 0, 0, 0, 0
    for im_file, lb, shape, nm_f, nf_f, ne_f, nc_f, msg in parse_all(im_files, label_files, dataset_root, entries,
                                                                      stats):
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
