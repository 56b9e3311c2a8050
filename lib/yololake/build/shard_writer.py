"""Write one shard (labels, images, index part, list part) from inside a Spark task.

What a shard publishes is a pure function of its frames: a retried or duplicate attempt writes the same
bytes to the same names, so whichever attempt finishes last, readers see identical content. The list
part goes last: a shard listed is a shard complete. Storage errors that survived the client's retries
come back as an `error` value instead of an exception, so Spark does not multiply the retries again.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from yololake.build.images import place_image, read_image
from yololake.dataset import layout as L
from yololake.errors import StorageError
from yololake.storage import Store, atomic_folder

SHARD_SCHEMA = ("split string, shard string, frames long, boxes long, background long, label_bytes long, "
                "sha256 string, object string, object_bytes long, object_sha256 string, classes string, "
                "error string")
"""One row per shard: its shards.json entry, its boxes per class id (JSON), and a storage error if any."""
ShardWriter = Callable[[pd.DataFrame], pd.DataFrame]
_PUT_BATCH = 256  # objects per concurrent batch on an object store


@dataclass(frozen=True)
class ShardSpec:
    store: Store
    images_mode: str = "link"
    layout: str = "files"
    archive_images: bool = False


def safe_name(name: str) -> str:
    """Refuse any name that could leave its folder (keys are validated before; this is the last guard)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise ValueError(f"refusing to write {name!r}: not a plain file name")
    return name


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)  # fixed metadata: the archive's bytes depend on the content only
    info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = len(data), 0, 0o644, 0, 0, "", ""
    tar.addfile(info, io.BytesIO(data))


class _HashingWriter:
    """A write-only file that hashes and counts what passes through (the manifest's size and checksum)."""

    def __init__(self, raw) -> None:
        self.raw, self.digest, self.size = raw, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        self.raw.write(data)
        return len(data)

    def tell(self) -> int:
        return self.size


def _index_part(frames: pd.DataFrame, labels: dict[str, bytes], digests: dict[str, str]) -> bytes:
    """The shard's index part: the frame facts, the copies' sha256 and the labels as YOLOv5 parses them."""
    frames = frames.rename(columns={"image_uri": "source_image"}).assign(
        **{c: None for c in L.IMAGE_FACT_COLUMNS if c not in frames.columns},
        image_sha256=[digests.get(f"{k}.{e}") for k, e in zip(frames["key"], frames["ext"])])
    schema = L.index_schema()
    table = pa.Table.from_pandas(frames[list(L.INDEX_COLUMNS[:-1])], schema=pa.schema(list(schema)[:-1]),
                                 preserve_index=False)
    table = table.append_column(schema.field("yolo_labels"), L.yolo_labels_column(
        [labels[f"{k}.txt"].decode("utf-8") for k in frames["key"]]))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _write_local_folder(spec: ShardSpec, folder: str, files: dict[str, bytes | str]) -> dict[str, str]:
    """Local files layout: write into a hidden sibling, then swap it in (a folder rename is atomic).
    A str value is a source image, placed per images.mode; returns the copies' sha256 by name."""
    digests = {}
    with atomic_folder(os.path.join(spec.store.root, folder)) as tmp:
        for file_name, content in files.items():
            target = os.path.join(tmp, safe_name(file_name))
            if isinstance(content, str):
                digest = place_image(content, target, spec.images_mode, spec.store.storage)
                if digest:
                    digests[file_name] = digest
            else:
                with open(target, "wb") as f:
                    f.write(content)
    return digests


def _read_images(names: dict[str, str], store: Store, digests: dict[str, str]) -> dict[str, bytes]:
    """The source images' bytes by name, their sha256 recorded in `digests`."""
    data = {name: read_image(uri, store.storage) for name, uri in names.items()}
    digests.update({name: hashlib.sha256(d).hexdigest() for name, d in data.items()})
    return data


def _put_batched(store: Store, objects: dict[str, bytes]) -> None:
    items = list(objects.items())
    for start in range(0, len(items), _PUT_BATCH):
        store.put_many(dict(items[start:start + _PUT_BATCH]))


def _publish(spec: ShardSpec, split: str, shard: str, frames: pd.DataFrame, labels: dict[str, bytes]) -> tuple:
    store = spec.store
    labels_dir, images_dir = L.labels_folder(split, shard), L.images_folder(split, shard)
    image_names = {f"{k}.{e}": uri for k, e, uri in zip(frames["key"], frames["ext"], frames["image_uri"])}
    digests: dict[str, str] = {}
    if spec.layout == "shard_archive":
        rel = L.label_archive(split, shard)
        with store.open_write(rel) as raw:
            sink = _HashingWriter(raw)
            with tarfile.open(fileobj=sink, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for name, data in labels.items():
                    _tar_member(tar, f"{labels_dir}/{name}", data)
                if spec.archive_images:
                    for name, data in _read_images(image_names, store, digests).items():
                        _tar_member(tar, f"{images_dir}/{name}", data)
        obj = (rel, sink.size, sink.digest.hexdigest())
    else:
        if store.local:
            _write_local_folder(spec, labels_dir, labels)
        else:
            _put_batched(store, {f"{labels_dir}/{name}": data for name, data in labels.items()})
        obj = (f"{labels_dir}/", None, None)
    if spec.images_mode != "none" and not spec.archive_images:
        # images.mode link with an object-store --out was refused before Spark started (build.config.check_run)
        if store.local:
            digests = _write_local_folder(spec, images_dir, image_names)
        else:
            images = _read_images(image_names, store, digests)
            _put_batched(store, {f"{images_dir}/{n}": data for n, data in images.items()})
    store.put(L.index_part(split, shard), _index_part(frames, labels, digests))
    lines = "".join(L.list_line(split, shard, name) for name in image_names)
    store.put(L.list_part(split, shard), lines.encode("utf-8"))
    return obj


def write_shard(frames: pd.DataFrame, spec: ShardSpec) -> pd.DataFrame:
    """Write the frames of one (split, shard); return its manifest row (with `error` on a storage failure).

    Columns used: split, shard, key, ext, image_uri, labels (text, "" for background), box_count, and the
    index columns (the image facts may be absent: null in the index).
    """
    split, shard = safe_name(str(frames["split"].iloc[0])), safe_name(str(frames["shard"].iloc[0]))
    frames = frames.sort_values("key", kind="stable").reset_index(drop=True)
    texts = [(safe_name(key), f"{text}\n".encode("utf-8") if text else b"")
             for key, text in zip(frames["key"], frames["labels"])]
    labels = {f"{key}.txt": data for key, data in texts}
    row = {"split": split, "shard": shard, "frames": len(frames), "boxes": int(frames["box_count"].sum()),
           "background": int((frames["box_count"] == 0).sum()),
           "label_bytes": sum(len(d) for d in labels.values()), "sha256": L.shard_sha256(texts),
           "object": None, "object_bytes": None, "object_sha256": None, "error": None,
           "classes": json.dumps(Counter(line.split(" ", 1)[0] for text in frames["labels"] if text
                                         for line in text.split("\n")))}
    try:
        if spec.store.exists(L.ABORTED):  # another shard already failed for good: don't pay its retries again
            row["error"] = f"skipped: {spec.store.read(L.ABORTED).decode('utf-8', 'replace')}"
        else:
            row["object"], row["object_bytes"], row["object_sha256"] = _publish(spec, split, shard, frames, labels)
    except (StorageError, OSError) as exc:
        row["error"] = str(exc) if isinstance(exc, StorageError) else f"shard {split}/{shard}: {exc}"
        try:
            spec.store.put(L.ABORTED, row["error"].encode("utf-8"))
        except StorageError:
            pass  # the store refuses even this; each shard then fails on its own
    return pd.DataFrame([row])


def make_shard_writer(spec: ShardSpec) -> ShardWriter:
    def writer(frames: pd.DataFrame) -> pd.DataFrame:
        return write_shard(frames, spec)
    return writer
