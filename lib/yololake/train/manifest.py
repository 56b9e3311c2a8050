"""A staged copy checked against the dataset's manifest (`shards.json`) and frame index (each image's byte
size, and its sha256 when the job copied it), shard archives unpacked, and the fingerprint every rank
compares before training."""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from concurrent.futures import ThreadPoolExecutor

import pyarrow.parquet as pq

from yololake.dataset import layout as L
from yololake.errors import DatasetError
from yololake.storage import atomic_file


def safe_target(root: str, rel: str) -> str:
    """root/rel, refusing names that would land outside the staged copy."""
    target = os.path.normpath(os.path.join(root, rel))
    if os.path.isabs(rel) or rel.split("/")[0] == ".." or not target.startswith(root + os.sep):
        raise DatasetError(f"refusing to stage {rel!r}: it would be written outside {root}")
    return target


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def shard_digest(folder: str) -> str:
    """The sha256 build-dataset records per shard (layout.shard_sha256) of the label files in `folder`."""
    keys = sorted(n[:-4] for n in os.listdir(folder) if n.endswith(".txt")) if os.path.isdir(folder) else []
    return L.shard_sha256((key, _read_bytes(os.path.join(folder, f"{key}.txt"))) for key in keys)


def image_problems(root: str, workers: int = 8) -> dict[str, str]:
    """Staged images whose bytes are not those the job read (size) or copied (sha256): relative path -> what.
    An absent image is left to the list check; an index without these columns checks nothing."""
    folder = os.path.join(root, L.INDEX)
    if not os.path.isdir(folder) or "image_bytes" not in pq.ParquetDataset(folder).schema.names:
        return {}
    t = pq.read_table(folder, columns=["split", "shard", "key", "ext", "image_bytes", "image_sha256"]).to_pydict()

    def check(row) -> tuple[str, str | None]:
        split, shard, key, ext, size, sha = row
        rel = L.image_file(split, shard, key, ext)
        path = os.path.join(root, rel)
        if not os.path.isfile(path):
            return rel, None
        actual = os.path.getsize(path)
        if size is not None and actual != size:
            return rel, f"{rel} ({actual} bytes, the index says {size})"
        if sha and _file_sha256(path) != sha:
            return rel, f"{rel} (its sha256 is not the index's)"
        return rel, None

    rows = zip(t["split"], t["shard"], t["key"], t["ext"], t["image_bytes"], t["image_sha256"])
    with ThreadPoolExecutor(max_workers=workers) as pool:  # hashing and reading release the GIL
        return {rel: what for rel, what in pool.map(check, rows) if what}


def verify(source, root: str, bad_images: list[str] | None = None) -> list[str]:
    """Problems of the copy at `root` against the manifest and the index (empty when it matches); the
    relative paths of wrong images are also appended to `bad_images`."""
    images = image_problems(root)
    if bad_images is not None:
        bad_images.extend(images)
    problems = []
    for shard in source.shards:
        rel = L.labels_folder(shard["split"], shard["shard"])
        if shard_digest(os.path.join(root, rel)) != shard["sha256"]:
            problems.append(rel)
    for split in L.SPLITS:
        expected = sum(s["frames"] for s in source.shards if s["split"] == split)
        listing = os.path.join(root, L.list_file(split))
        if not os.path.exists(listing):
            if expected:
                problems.append(L.list_file(split))
            continue
        with open(listing, encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f if line.strip()]
        if len(lines) != expected:
            problems.append(f"{split}.txt ({len(lines)} lines, manifest says {expected} frames)")
        missing = [line for line in lines if not os.path.isfile(os.path.join(root, line[2:]))]
        problems += [f"{line[2:]} (listed in {split}.txt)" for line in missing[:5]]
    return problems + list(images.values())


def archived(source) -> bool:
    """shard_archive layout: each shard's labels (and maybe images) are one tar, unpacked when staging."""
    return any(str(s.get("object") or "").endswith(".tar") for s in source.shards)


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unpack_archives(source, root: str) -> None:
    """Unpack each shard tar whose labels are not in place yet; a tar that fails its sha256 is removed
    (verification then reports the shard and it is fetched again)."""
    for shard in source.shards:
        rel = str(shard.get("object") or "")
        if not rel.endswith(".tar"):
            continue
        tar_path = safe_target(root, rel)
        folder = os.path.join(root, L.labels_folder(shard["split"], shard["shard"]))
        if not os.path.exists(tar_path) or shard_digest(folder) == shard["sha256"]:
            continue
        if shard.get("object_sha256") and _file_sha256(tar_path) != shard["object_sha256"]:
            os.remove(tar_path)
            continue
        with tarfile.open(tar_path) as tar:
            for member in tar:
                if not member.isfile() or not member.name.startswith((f"{L.LABELS}/", f"{L.IMAGES}/")):
                    continue  # only plain files, only where a dataset keeps them
                target = safe_target(root, member.name)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with atomic_file(target) as tmp, tar.extractfile(member) as src, open(tmp, "wb") as out:
                    shutil.copyfileobj(src, out)


def fingerprint(root: str) -> str:
    """What every rank compares before training: the manifests and list files of the copy it will read."""
    digest = hashlib.sha256()
    for name in (L.SUCCESS, L.SHARDS_JSON) + tuple(L.list_file(s) for s in L.SPLITS):
        path = os.path.join(root, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                digest.update(name.encode() + b"\0" + hashlib.sha256(f.read()).digest())
    return digest.hexdigest()
