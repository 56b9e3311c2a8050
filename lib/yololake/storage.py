"""The output root as an fsspec file system: local paths, file://, s3:// (s3fs), anything fsspec knows.

Every object is written in one step that is either complete or absent: a local file goes through a
temporary name and a rename, an object store gets a single PUT (or a multipart upload aborted on error).
Credentials follow botocore's chain (environment, profiles, instance roles) and are never logged.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import fsspec

from yololake.config import StorageConfig
from yololake.errors import StorageError


def fsspec_options(url: str, storage: StorageConfig) -> dict:
    """Storage options for `url`. Retries are set on purpose: s3fs retries wrap botocore's, so they multiply
    (at most s3fs_retries x max_attempts HTTP attempts per call)."""
    if not url.startswith(("s3://", "s3a://")):
        return {}
    client = {k: v for k, v in (("endpoint_url", storage.endpoint_url), ("region_name", storage.region)) if v}
    options: dict = {
        "config_kwargs": {"retries": {"max_attempts": storage.max_attempts, "mode": "standard"},
                          "connect_timeout": storage.connect_timeout, "read_timeout": storage.read_timeout},
        "client_kwargs": client,
    }
    if storage.profile:
        options["profile"] = storage.profile
    return options


def filesystem(url: str, storage: StorageConfig) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec file system and path for `url`, with our timeouts and retry budget."""
    fs, path = fsspec.core.url_to_fs(url, **fsspec_options(url, storage))
    if hasattr(fs, "retries"):  # s3fs: its retry loop is a class attribute, not a constructor option
        fs.retries = storage.s3fs_retries
    return fs, path


def is_local(url: str) -> bool:
    return url.startswith("file://") or "://" not in url


def local_path(url: str) -> str | None:
    """The local path of a plain path or file:// URL; None for any other URL (s3://, gs://, ...)."""
    return url.removeprefix("file://") if is_local(url) else None


@contextlib.contextmanager
def atomic_file(path: str, suffix: str = "") -> Iterator[str]:
    """A temporary name beside `path` to write; renamed to `path` when the block ends without error, removed
    otherwise. Readers see the old file or the whole new one, never a part (and a killed writer leaves only
    a `.tmp-` name, which sweepers recognise)."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex}{suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_folder(path: str) -> Iterator[str]:
    """A hidden sibling folder to fill; swapped in for `path` when the block ends without error, removed
    otherwise. Hidden siblings an earlier, killed attempt left are removed first."""
    parent, name = os.path.split(path)
    for stale in glob.glob(os.path.join(glob.escape(parent), f".{glob.escape(name)}.tmp-*")):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = os.path.join(parent, f".{name}.tmp-{uuid.uuid4().hex}")
    os.makedirs(tmp)
    try:
        yield tmp
        if os.path.lexists(path):
            shutil.rmtree(path)
        os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def json_bytes(data: object) -> bytes:
    """The JSON files we write (stats, manifests, markers): sorted keys, indented, one trailing newline."""
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def atomic_write(path: str, data: bytes | str) -> None:
    """Write a whole local file through `atomic_file` (text as UTF-8)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def precondition_failed(exc: BaseException) -> bool:
    """An object store refused a conditional write (HTTP 412): s3fs words it in several ways."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen)
        if "PreconditionFailed" in text or "412" in text or "pre-condition" in text.lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def describe_error(exc: BaseException) -> str:
    """A one-line reason for a storage exception (botocore messages carry codes, not secrets)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class Store:
    """The output root. Picklable: executors rebuild the file system from (url, storage)."""

    url: str
    storage: StorageConfig

    def __post_init__(self) -> None:
        # Resolve a relative local root once, on the driver: executors may run elsewhere.
        if self.url.startswith("s3a://"):
            object.__setattr__(self, "url", "s3://" + self.url[len("s3a://"):])
        elif is_local(self.url):
            object.__setattr__(self, "url", os.path.abspath(self.url.removeprefix("file://")))

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        return filesystem(self.url, self.storage)[0]

    @property
    def root(self) -> str:
        """The root as the file system's own path (absolute local path, or bucket/prefix)."""
        return filesystem(self.url, self.storage)[1].rstrip("/")

    @property
    def local(self) -> bool:
        return is_local(self.url)

    def sub(self, rel: str) -> Store:
        """The store rooted at `rel` under this root."""
        return Store(self.display(rel), self.storage)

    def display(self, rel: str = "") -> str:
        """The URL of `rel` under the root, for messages."""
        base = self.url.rstrip("/")
        return f"{base}/{rel}" if rel else base

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    # Writes ----------------------------------------------------------------------------------------
    def put(self, rel: str, data: bytes) -> None:
        path = self.path(rel)
        try:
            if self.local:
                atomic_write(path, data)
            else:
                self.fs.pipe_file(path, data)
        except OSError as exc:
            raise StorageError(f"cannot write {self.display(rel)}: {describe_error(exc)}") from None

    def put_many(self, objects: Mapping[str, bytes]) -> None:
        """Write many small objects; on an object store, concurrently (s3fs batches the PUTs)."""
        if self.local:
            for rel, data in objects.items():
                self.put(rel, data)
            return
        try:
            self.fs.pipe({self.path(rel): data for rel, data in objects.items()})
        except OSError as exc:
            raise StorageError(f"cannot write objects under {self.display(os.path.dirname(next(iter(objects))))}: "
                               f"{describe_error(exc)}") from None

    def create_exclusive(self, rel: str, data: bytes) -> bool:
        """Write `rel` only if it does not exist yet (S3 conditional PUT, O_EXCL locally); False if it did."""
        path = self.path(rel)
        try:
            if self.local:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            else:
                self.fs.pipe_file(path, data, mode="create")
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if precondition_failed(exc):
                return False
            raise StorageError(f"cannot write {self.display(rel)}: {describe_error(exc)}") from None

    @contextlib.contextmanager
    def open_write(self, rel: str) -> Iterator:
        """A streamed write that becomes visible only when the block ends without error."""
        path = self.path(rel)
        try:
            if self.local:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with atomic_file(path) as tmp, open(tmp, "wb") as f:
                    yield f
                return
            f = self.fs.open(path, "wb")
            try:
                yield f
            except BaseException:
                f.discard()  # aborts a multipart upload: nothing partial becomes visible
                raise
            f.close()
        except OSError as exc:
            raise StorageError(f"cannot write {self.display(rel)}: {describe_error(exc)}") from None

    # Reads and housekeeping --------------------------------------------------------------------------
    def read(self, rel: str) -> bytes:
        try:
            return self.fs.cat_file(self.path(rel))
        except OSError as exc:
            raise StorageError(f"cannot read {self.display(rel)}: {describe_error(exc)}") from None

    def exists(self, rel: str) -> bool:
        try:
            return self.fs.exists(self.path(rel))
        except OSError as exc:
            raise StorageError(f"cannot check {self.display(rel)}: {describe_error(exc)}") from None

    def names(self, rel: str = "") -> list[str]:
        """Names directly under `rel` (a small folder: the root, a split's list parts)."""
        try:
            if not self.fs.exists(self.path(rel)):
                return []
            return sorted(os.path.basename(p.rstrip("/")) for p in self.fs.ls(self.path(rel), detail=False))
        except OSError as exc:
            raise StorageError(f"cannot list {self.display(rel)}: {describe_error(exc)}") from None

    def remove(self, rel: str) -> None:
        """Remove an object or a whole folder/prefix; absent is fine."""
        path = self.path(rel)
        try:
            if self.local and os.path.islink(path):
                os.remove(path)
            elif self.fs.exists(path):
                self.fs.rm(path, recursive=True)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot remove {self.display(rel)}: {describe_error(exc)}") from None
