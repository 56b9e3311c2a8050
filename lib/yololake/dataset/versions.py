"""A versioned output: immutable version folders under OUT/versions/, and OUT/dataset.yaml, the pointer.

A build writes a new version folder and commits it (`_SUCCESS`, create-only); only then is the pointer
replaced, in one atomic step (a rename locally; one PUT on an object store, conditional on the pointer
it read when the store supports it). A reader that opens OUT/dataset.yaml therefore always gets a complete
version, and a run that fails or is killed leaves the current version and the pointer as they were.

A version folder without `_SUCCESS` is either being written or a leftover. Its writer rewrites
`_heartbeat` every few seconds; the folder is a leftover when that writer is gone: a process of this
host that no longer exists, or a heartbeat older than `stale_after` seconds. Only leftovers are removed.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from yololake.config import StorageConfig
from yololake.dataset import layout as L
from yololake.errors import OutputExistsError, StorageError
from yololake.storage import Store, json_bytes, precondition_failed

log = logging.getLogger("yololake.versions")
VERSION_ID = re.compile(r"^v\d{8}T\d{6}Z-[0-9a-f]{8}$")
_POINTER_ATTEMPTS = 8


def new_version_id(run_id: str) -> str:
    """Sortable by start time; unique per run (two runs started in the same second differ by run id)."""
    return dt.datetime.now(dt.timezone.utc).strftime("v%Y%m%dT%H%M%SZ-") + run_id[:8]


def writer_info() -> dict:
    """Who writes a version: enough for a later run to tell whether that writer is still alive."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


@dataclass(frozen=True)
class Version:
    id: str
    success: dict | None
    """The `_SUCCESS` document (frames, boxes, fingerprint, committed time); None while uncommitted."""

    @property
    def committed(self) -> bool:
        return self.success is not None


class VersionedOutput:
    """OUT: its versions, its pointer, and the clean-up of leftovers."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def version_store(self, version_id: str) -> Store:
        return self.store.sub(L.version_folder(version_id))

    # Opening ------------------------------------------------------------------------------------------
    def check(self) -> list[str]:
        """Refuse a folder another tool wrote, or an output of the layout before versions; return its names."""
        names = self.store.names()
        if names and L.OUTPUT_MARKER not in names:
            if L.RUN_MARKER in names or L.SUCCESS in names:
                raise OutputExistsError(f"--out {self.store.display()} holds a dataset in the layout of yololake "
                                        "before versions (no versions/ folder); choose a new --out, or remove it")
            raise OutputExistsError(f"--out {self.store.display()} is not empty and was not written by yololake; "
                                    "choose an empty or new folder")
        return names

    def open(self) -> None:
        """Make OUT ours (first build) or check that it is: never touch a folder another tool wrote."""
        if not self.check():
            self.store.create_exclusive(L.OUTPUT_MARKER, json_bytes({"layout": "versions", "format": 1}))

    # Reading ------------------------------------------------------------------------------------------
    def current_id(self) -> str:
        """The version the pointer names ('' before the first commit)."""
        if not self.store.exists(L.DATASET_YAML):
            return ""
        return L.read_version(self.store.read(L.DATASET_YAML))

    def version(self, version_id: str) -> Version:
        vstore = self.version_store(version_id)
        success = json.loads(vstore.read(L.SUCCESS) or b"{}") if vstore.exists(L.SUCCESS) else None
        return Version(version_id, success)

    def version_ids(self) -> list[str]:
        return [n for n in self.store.names(L.VERSIONS) if VERSION_ID.match(n)]

    # Writing ------------------------------------------------------------------------------------------
    def point_to(self, version_id: str, data: bytes) -> None:
        """Replace the pointer with `data` (the version's dataset.yaml) in one atomic step."""
        if self.store.local:
            self.store.put(L.DATASET_YAML, data)  # a rename: readers see the old file or the new one
            return
        fs, path = self.store.fs, self.store.path(L.DATASET_YAML)
        for _ in range(_POINTER_ATTEMPTS):
            fs.invalidate_cache(path)
            etag = fs.info(path).get("ETag") if fs.exists(path) else None
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                fs.pipe_file(path, data, **condition)
                return
            except OSError as exc:
                text = str(exc)
                if precondition_failed(exc):
                    log.info("the pointer moved while this run committed; comparing again")
                    continue
                if "NotImplemented" in text or "501" in text:
                    log.warning("this store has no conditional writes: the pointer is replaced by a plain PUT "
                                "(the last run to commit wins)")
                    self.store.put(L.DATASET_YAML, data)
                    return
                raise StorageError(f"cannot write {self.store.display(L.DATASET_YAML)}: {exc}") from None
        raise StorageError(f"{self.store.display(L.DATASET_YAML)} kept changing during {_POINTER_ATTEMPTS} "
                           "attempts to replace it; another run is committing in a loop. Rerun this build")

    def remove(self, version_id: str) -> None:
        """Uncommit first, so an interrupted removal never leaves a folder that looks committed."""
        vstore = self.version_store(version_id)
        vstore.remove(L.SUCCESS)
        self.store.remove(L.version_folder(version_id))

    # Leftovers ----------------------------------------------------------------------------------------
    def _writer_gone(self, version_id: str, stale_after: float) -> bool:
        vstore = self.version_store(version_id)
        if vstore.exists(L.FAILED):
            return True
        try:
            run = json.loads(vstore.read(L.RUN_MARKER)) if vstore.exists(L.RUN_MARKER) else {}
            beat = float(vstore.read(L.HEARTBEAT)) if vstore.exists(L.HEARTBEAT) else run.get("started_at", 0.0)
        except (ValueError, StorageError):
            run, beat = {}, 0.0
        if run.get("host") == socket.gethostname() and isinstance(run.get("pid"), int):
            try:
                os.kill(run["pid"], 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
        if not beat and self.store.local:  # killed before its first write: the folder's own age
            beat = os.path.getmtime(self.store.path(L.version_folder(version_id)))
        return time.time() - beat > stale_after

    def leftovers(self, stale_after: float) -> list[str]:
        """Uncommitted versions whose writer is gone (never the current version, never a live run's)."""
        current = self.current_id()
        return [v for v in self.version_ids()
                if v != current and not self.version(v).committed and self._writer_gone(v, stale_after)]

    def clean_leftovers(self, stale_after: float) -> list[str]:
        removed = self.leftovers(stale_after)
        for version_id in removed:
            self.remove(version_id)
            log.info("removed %s, left by a run that did not finish", version_id)
        return removed


@contextlib.contextmanager
def failure_marked(store: Store) -> Iterator[None]:
    """Mark the version folder as failed (with the reason) when the block raises, then re-raise."""
    try:
        yield
    except BaseException as exc:
        try:
            store.put(L.FAILED, json_bytes({"error": f"{type(exc).__name__}: {exc}"[:2000], **writer_info()}))
        except StorageError:
            pass  # it then looks unfinished until its heartbeat is stale: removed later, never wrongly
        raise


def current_folder(root: str) -> str:
    """A local versioned output -> its current version's folder; any other local folder -> itself."""
    if not os.path.exists(os.path.join(root, L.OUTPUT_MARKER)):
        return root
    output = VersionedOutput(Store(root, StorageConfig()))
    version_id = output.current_id()
    return output.version_store(version_id).root if version_id else root


@contextlib.contextmanager
def heartbeat(store: Store, interval: float) -> Iterator[None]:
    """Rewrite `store`/_heartbeat every `interval` seconds while the block runs (a daemon thread)."""
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                store.put(L.HEARTBEAT, f"{time.time():.3f}".encode())
            except StorageError as exc:  # a missed beat only makes the run look older to another run
                log.warning("heartbeat: %s", exc)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name="yololake-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval + 5)
