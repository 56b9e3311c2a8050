"""Resolve a dataset (local folder or fsspec URL) and stage it to fast local disk, verified and resumable.

A dataset is a folder that build-dataset committed: `_SUCCESS` exists. Staging copies what training reads
(list files, labels, images, the frame index, the manifests) into `<stage dir>/<name>-<version>/`:
- files are fetched in parallel into temporary names and renamed when complete, so an interrupted run
  leaves only whole files and the next run fetches just the rest (same name and size: skipped);
- the result is verified against the manifest: every shard's labels hash to its `shards.json` sha256 and
  every listed image is present, with the byte size the job read (and the sha256 of the job's copy, when it
  made one); a shard or image that fails is fetched again once, then it is an error;
- a marker written last makes the next run skip a staged copy that already matches.
"""
from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import fsspec
import yaml

from yololake.dataset import layout as L
from yololake.dataset.versions import VERSION_ID
from yololake.errors import DatasetError
from yololake.storage import atomic_file, atomic_write
from yololake.train.manifest import safe_target, unpack_archives, verify

MARKER = ".yololake_staged.json"
TOP_FILES = (L.SUCCESS, L.SHARDS_JSON, L.STATS_JSON, L.DATASET_YAML) + tuple(L.list_file(s) for s in L.SPLITS)
TREES = tuple(f"{tree}/" for tree in (L.LABELS, L.IMAGES, L.INDEX))


@dataclass(frozen=True)
class Source:
    url: str
    fs: fsspec.AbstractFileSystem = field(repr=False)
    path: str
    success: dict
    shards: list
    names: list
    version: str
    """sha256 of `_SUCCESS` + `shards.json`: changes whenever the dataset is rebuilt."""
    version_id: str = ""
    """The build's version id (OUT/versions/<id>), when --data is a versioned output or names one."""
    name: str = ""
    """The dataset's name: OUT's folder name."""

    @property
    def is_local(self) -> bool:
        return "file" in _protocols(self.fs)

    @property
    def folder_name(self) -> str:
        base = self.name or posixpath.basename(self.path.rstrip("/")) or "dataset"
        return f"{base}-{self.version[:12]}"


def _protocols(fs) -> tuple:
    return (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)


def _read(fs, path: str) -> bytes:
    with fs.open(path, "rb") as f:
        return f.read()


def _version_path(fs, path: str, url: str, pinned: str) -> tuple[str, str]:
    """A versioned output -> (its current or `pinned` version folder, the version id); a plain dataset
    folder (one version folder, or a dataset from before versions) -> (itself, '')."""
    if pinned:
        folder = f"{path}/{L.version_folder(pinned)}"
        if not fs.isdir(folder):
            raise DatasetError(f"--data {url}@{pinned}: no such version; `yololake versions {url}` lists them")
        return folder, pinned
    if not fs.exists(f"{path}/{L.OUTPUT_MARKER}"):
        return path, ""
    current = L.read_version(_read(fs, f"{path}/{L.DATASET_YAML}")) if fs.exists(f"{path}/{L.DATASET_YAML}") else ""
    if not current:
        raise DatasetError(f"--data {url}: no version has been committed yet (build-dataset failed or is still "
                           "running); rerun build-dataset")
    return f"{path}/{L.version_folder(current)}", current


def resolve(url: str) -> Source:
    """Open the dataset (for a versioned output: its current version, read once, or the one `URL@<version>`
    pins) and read its manifests; refuse anything build-dataset did not commit."""
    base, sep, tail = url.rpartition("@")
    url, pinned = (base, tail) if sep and VERSION_ID.match(tail) else (url, "")
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise DatasetError(f"--data {url}: cannot open this URL ({exc})") from None
    path = path.rstrip("/") or "/"
    fs.invalidate_cache(path)  # object-store listings are cached per process; a rebuild must be seen
    if not fs.isdir(path):
        raise DatasetError(f"--data {url}: no such dataset folder; pass the --out folder of build-dataset")
    name = posixpath.basename(path) or "dataset"
    path, version_id = _version_path(fs, path, url, pinned)
    try:
        success_bytes = _read(fs, f"{path}/{L.SUCCESS}")
    except FileNotFoundError:
        raise DatasetError(f"--data {url}: no {L.SUCCESS} marker, so build-dataset did not finish writing it "
                           "(failed or still running); rerun build-dataset or pick a committed dataset") from None
    try:
        shards_bytes = _read(fs, f"{path}/{L.SHARDS_JSON}")
        names = L.read_names(_read(fs, f"{path}/{L.DATASET_YAML}"))
        shards = json.loads(shards_bytes)
        success = json.loads(success_bytes or b"{}")
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise DatasetError(f"--data {url}: committed but its shards.json/dataset.yaml cannot be read ({exc}); "
                           "rebuild the dataset") from None
    version = hashlib.sha256(success_bytes + b"\0" + shards_bytes).hexdigest()
    return Source(url, fs, path, success, shards, names, version, version_id, name)


def default_stage_root(stage_dir: str) -> str:
    return os.path.abspath(os.path.expanduser(stage_dir or os.path.join("~", ".cache", "yololake", "stage")))


def _wanted(rel: str) -> bool:
    return rel in TOP_FILES or rel.startswith(TREES)


@dataclass
class StageReport:
    root: str
    files: int = 0
    fetched: int = 0
    fetched_bytes: int = 0
    skipped: bool = False


def stage(source: Source, stage_root: str, workers: int = 16, progress: bool = True,
          on_file: Callable[[str], None] | None = None, min_free_bytes: int = 0) -> StageReport:
    """Copy the dataset to `<stage_root>/<name>-<version>`; returns what was done. `on_file` sees each fetch."""
    root = os.path.join(stage_root, source.folder_name)
    report = StageReport(root)
    marker = os.path.join(root, MARKER)
    if os.path.exists(marker):
        with open(marker, encoding="utf-8") as f:
            if json.load(f).get("version") == source.version:
                report.skipped = True
                return report
    os.makedirs(root, exist_ok=True)
    sweep_temporaries(root)
    listing = {p: info for p, info in source.fs.find(source.path, detail=True).items()
               if info.get("type") != "directory"}
    prefix = source.path.rstrip("/") + "/"
    todo, total = [], 0
    for path, info in sorted(listing.items()):
        rel = path[len(prefix):] if path.startswith(prefix) else None
        if rel is None or not _wanted(rel):
            continue
        target = safe_target(root, rel)
        report.files += 1
        size = info.get("size")
        if os.path.isfile(target) and size is not None and os.path.getsize(target) == size:
            continue  # fetched whole by an earlier run (temporary names are renamed only when complete)
        todo.append((path, target))
        total += size or 0
    free = shutil.disk_usage(root).free
    if total + min_free_bytes > free:
        raise DatasetError(f"--stage-dir {stage_root}: {total / 1e9:.2f} GB to stage + {min_free_bytes / 1e9:.2f} GB "
                           f"reserve (--min-free-gb) but only {free / 1e9:.2f} GB free; free space or "
                           "pick another --stage-dir")
    _fetch_all(source, todo, workers, progress, on_file, report)
    unpack_archives(source, root)
    bad_images: list[str] = []
    problems = verify(source, root, bad_images)
    bad_shards = [p + end for p in problems if p.startswith("labels/") for end in ("/", ".tar")]
    if bad_shards or bad_images:  # a file changed without changing size, or a partial copy: fetch it again, once
        bad = set(bad_images)
        again = [(p, safe_target(root, p[len(prefix):])) for p in listing if p.startswith(prefix) and (
                 p[len(prefix):].startswith(tuple(bad_shards)) or p[len(prefix):] in bad)]
        for _, target in again:
            os.remove(target) if os.path.exists(target) else None
        _fetch_all(source, again, workers, progress, on_file, report)
        unpack_archives(source, root)
        problems = verify(source, root)
    if problems:
        raise DatasetError(f"staged copy of {source.url} does not match its manifest: {', '.join(problems[:5])}; "
                           "the source dataset is incomplete or changed after commit; rebuild it")
    info = {"version": source.version, "url": source.url, "files": report.files, "run_id": source.success.get("run_id")}
    atomic_write(marker, json.dumps(info, indent=2))
    return report


def _fetch_all(source: Source, todo: list, workers: int, progress: bool, on_file, report: StageReport) -> None:
    if not todo:
        return
    from tqdm import tqdm  # comes with YOLOv5

    def fetch(item):
        remote, target = item
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with atomic_file(target) as tmp:
            source.fs.get_file(remote, tmp)
        return os.path.getsize(target)

    pool = ThreadPoolExecutor(max_workers=workers)
    futures = {pool.submit(fetch, item): item[0] for item in todo}
    try:
        with tqdm(total=len(todo), desc=f"staging {source.url}", unit="file", disable=not progress) as bar:
            for future in as_completed(futures):
                report.fetched_bytes += future.result()
                report.fetched += 1
                bar.update(1)
                if on_file:
                    on_file(futures[future])
    finally:
        # An interruption stops here: pending fetches are dropped, finished files stay for the next run.
        pool.shutdown(wait=True, cancel_futures=True)


def sweep_temporaries(root: str) -> None:
    """Remove the partial files a killed run left (they never carry a final name)."""
    for folder, _, files in os.walk(root):
        for name in files:
            if ".tmp-" in name:
                os.remove(os.path.join(folder, name))
