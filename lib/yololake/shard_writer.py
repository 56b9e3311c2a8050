"""Write one shard (label files, images, list lines) from inside a Spark task.

A shard is written into hidden temporary folders and then renamed into place, so a failed or
retried attempt never leaves a half-written shard visible, and a retry writes identical bytes.
"""
from __future__ import annotations

import glob
import hashlib
import os
import shutil
import uuid
from collections.abc import Callable

import pandas as pd

from yololake.images import place_image

SHARD_SCHEMA = ("split string, shard string, frames long, boxes long, background long, "
                "label_bytes long, sha256 string")
ShardWriter = Callable[[pd.DataFrame], pd.DataFrame]


def _safe_child(parent: str, name: str) -> str:
    """parent/name, refusing any name that would leave `parent` (keys are validated before; this is a guard)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise ValueError(f"refusing to write {name!r}: not a plain file name")
    return os.path.join(parent, name)


def _publish_dir(tmp: str, final: str) -> None:
    if os.path.lexists(final):
        shutil.rmtree(final)
    os.rename(tmp, final)


def _atomic_text(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, path)


def write_shard(frames: pd.DataFrame, out_root: str, images_mode: str) -> pd.DataFrame:
    """Write the frames of one (split, shard); return its manifest row.

    Columns used: split, shard, key, ext, image_uri, labels (text, "" for background), box_count.
    """
    split, shard = str(frames["split"].iloc[0]), str(frames["shard"].iloc[0])
    frames = frames.sort_values("key")
    tag = f".{shard}.tmp-{uuid.uuid4().hex}"
    dirs = {kind: _safe_child(os.path.join(out_root, kind), split) for kind in ("labels", "images", "_lists")}
    for kind in ("labels", "images"):
        # Leftovers of an earlier attempt of this shard that died before publishing.
        for stale in glob.glob(os.path.join(glob.escape(dirs[kind]), f".{glob.escape(shard)}.tmp-*")):
            shutil.rmtree(stale, ignore_errors=True)
        os.makedirs(_safe_child(dirs[kind], tag))
    os.makedirs(dirs["_lists"], exist_ok=True)

    digest, label_bytes, lines = hashlib.sha256(), 0, []
    for key, ext, image_uri, labels in zip(frames["key"], frames["ext"], frames["image_uri"], frames["labels"]):
        text = f"{labels}\n" if labels else ""
        data = text.encode("utf-8")
        with open(_safe_child(os.path.join(dirs["labels"], tag), f"{key}.txt"), "wb") as f:
            f.write(data)
        image_name = f"{key}.{ext}"
        if images_mode != "none":
            place_image(image_uri, _safe_child(os.path.join(dirs["images"], tag), image_name), images_mode)
        digest.update(f"{key}\0".encode() + data + b"\0")
        label_bytes += len(data)
        lines.append(f"./images/{split}/{shard}/{image_name}\n")

    _publish_dir(os.path.join(dirs["images"], tag), _safe_child(dirs["images"], shard))
    _publish_dir(os.path.join(dirs["labels"], tag), _safe_child(dirs["labels"], shard))
    # The list file goes last: a shard listed is a shard complete.
    _atomic_text(_safe_child(dirs["_lists"], f"{shard}.txt"), "".join(lines))
    boxes = int(frames["box_count"].sum())
    return pd.DataFrame([{
        "split": split, "shard": shard, "frames": len(frames), "boxes": boxes,
        "background": int((frames["box_count"] == 0).sum()), "label_bytes": label_bytes,
        "sha256": digest.hexdigest(),
    }])


def make_shard_writer(out_root: str, images_mode: str) -> ShardWriter:
    def writer(frames: pd.DataFrame) -> pd.DataFrame:
        return write_shard(frames, out_root, images_mode)
    return writer
