"""Input files as Spark sees them, checked before a table is read.

Spark lists the files (its own rules: hidden `_`/`.` names skipped, hive folders, globs); Hadoop's file system,
the one Spark reads through with the same credentials, answers the rest on the driver: sizes (Spark skips a
zero-byte file without a word), a parquet file's footer, a CSV file's header. Metadata only: per file a name,
a size, a footer or one line, never the rows.
"""
from __future__ import annotations

import contextlib
import csv
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession

from yololake.errors import InputError

CORRUPT_RECORD = "_corrupt_record"
"""Spark's column for a row it could not parse (the raw line), in CSV and JSON reads."""
EMPTY_FILE = "the file is empty (0 bytes)"
_HEADER_SEARCH_LINES = 100
_FILE_STATUS = re.compile(r"path=(.*?); isDirectory=(true|false)(?:; length=(\d+))?")
"""Hadoop's FileStatus.toString(): `...{path=file:/a/b; isDirectory=false; length=0; replication=...}`."""


@dataclass(frozen=True)
class Unreadable:
    """An input file that cannot be read, and why (one line)."""

    path: str
    problem: str


def java_message(exc: BaseException) -> str:
    """The first line of the deepest Java cause of a Py4J or PySpark error (else of the error itself)."""
    java = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    text = str(exc)
    while java is not None:
        text = str(java.getMessage() or java.toString())
        java = java.getCause()
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class HadoopFiles:
    """Driver-side questions to Hadoop's file system about the files Spark will read."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.jvm = spark._jvm  # noqa: SLF001 - PySpark has no public handle on Hadoop's FileSystem
        self.conf = spark._jsc.hadoopConfiguration()  # noqa: SLF001

    def _path(self, uri: str, encoded: bool = True):
        """A Hadoop Path: `encoded` for the URIs Spark lists (spaces as %20), plain for user paths."""
        fs_path = self.jvm.org.apache.hadoop.fs.Path
        return fs_path(self.jvm.java.net.URI(uri)) if encoded else fs_path(uri)

    def list(self, root: str) -> list[str]:
        """The files Spark reads for `root` (a file, folder or glob), as URIs; [] for an empty folder."""
        return list(self.spark.read.format("text").load(root).inputFiles())

    def is_dir(self, root: str) -> bool:
        path = self._path(root, encoded=False)
        try:
            return bool(path.getFileSystem(self.conf).getFileStatus(path).isDirectory())
        except Exception:  # noqa: BLE001 - a glob or a remote path Hadoop cannot stat: not a folder to read under
            return False

    def empty(self, files: Iterable[str]) -> list[str]:
        """The zero-byte files among `files` (URIs as Spark lists them): one listing call per folder, read back
        as one string (Hadoop's FileStatus text), not a Java call per file."""
        by_folder: dict[str, dict[str, str]] = defaultdict(dict)
        for uri in files:
            folder, _, name = uri.rpartition("/")
            by_folder[folder][unquote(name)] = uri
        found = []
        for folder, names in by_folder.items():
            path = self._path(folder)
            text = self.jvm.org.apache.commons.lang3.ArrayUtils.toString(path.getFileSystem(self.conf).listStatus(path))
            for full, is_dir, length in _FILE_STATUS.findall(text):
                name = full.rpartition("/")[2]
                if name in names and is_dir == "false" and length == "0":
                    found.append(names[name])
        return sorted(found)

    def parquet_problem(self, uri: str) -> str | None:
        """Why the file's parquet footer cannot be read (truncated, not parquet), or None when it can."""
        hadoop_file = self.jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(self._path(uri), self.conf)
        try:
            self.jvm.org.apache.parquet.hadoop.ParquetFileReader.open(hadoop_file).close()
        except Exception as exc:  # noqa: BLE001 - any failure to open the footer makes the file unreadable
            return re.sub(r"^\S+ is not", "is not", java_message(exc))
        return None

    def first_line(self, uri: str) -> str | None:
        """The first non-blank line of a (possibly compressed) text file; None when there is none."""
        jvm, path = self.jvm, self._path(uri)
        stream = path.getFileSystem(self.conf).open(path)
        codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(self.conf).getCodec(path)
        if codec is not None:
            stream = codec.createInputStream(stream)
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        try:
            for _ in range(_HEADER_SEARCH_LINES):
                line = reader.readLine()
                if line is None or line.strip():
                    return line
            return None
        finally:
            reader.close()


def csv_columns(uri: str, line: str | None, header: bool) -> tuple[str, ...]:
    """A CSV file's column names as Spark names them: its header's fields (BOM stripped, a blank name becomes
    `_c<i>`), or `_c0`.. `_c<n-1>` for the fields of its first line when the files have no header."""
    if line is None:
        raise InputError(f"CSV file {display_path(uri)} has no {'header' if header else 'rows'}: "
                         "it holds only blank lines")
    fields = next(csv.reader([line.lstrip("\ufeff")]))
    if not header:
        return tuple(f"_c{i}" for i in range(len(fields)))
    names = tuple(name if name else f"_c{i}" for i, name in enumerate(fields))
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"CSV file {display_path(uri)} repeats column {repeated[0]!r} in its header; "
                         "column names must be unique")
    return names


def check_columns(uri: str, columns: Sequence[str], required: Sequence[str]) -> None:
    """Fail naming the file and the column when a file lacks a configured column."""
    missing = [c for c in required if c not in columns]
    if missing:
        raise InputError(f"CSV file {display_path(uri)} has no column {missing[0]!r} in its header "
                         f"({', '.join(columns)}); "
                         "every file must name the configured columns: fix the file or the config")


_READ_FILE = re.compile(r"while reading file (\S+?)\.?(?:\s|$)")


def display_path(uri: str) -> str:
    """A file as the user knows it: a local file URI as its path (file:///a%20b -> /a b), other URLs as they are."""
    return unquote(re.sub(r"^file:/*", "/", uri)) if uri.startswith("file:") else uri


def _bare(path: str) -> str:
    """A path or URL without its scheme, local paths absolute: s3://b/k and s3a://b/k compare equal."""
    if path.startswith("file:") or "://" not in path:
        return os.path.abspath(display_path(path))
    return path.split("://", 1)[1]


def unreadable_error(what: str, uri: str, problem: str) -> InputError:
    hint = ", or set annotations.on_unreadable_file: quarantine" if what == "annotations" else ""
    return InputError(f"cannot read {what} file {display_path(uri)}: {problem}. Fix or remove the file{hint}")


def read_error(exc: BaseException, what: str, sources: Mapping[str, Sequence[str]] | None = None) -> InputError | None:
    """A Spark read failure as one line naming the file (or the path), else None (not a read failure).

    `sources` (kind -> the paths given for it) names the kind of a failing file found under one of them."""
    text = str(exc)
    match = _READ_FILE.search(text)
    if match:
        bare = _bare(match.group(1))
        what = next((kind for kind, paths in (sources or {}).items()
                     if any(bare.startswith(_bare(p)) for p in paths)), what)
        cause = re.sub(r"(?:file:/*)?/?" + re.escape(bare.lstrip("/")) + r"\s*", "", java_message(exc))
        return unreadable_error(what, match.group(1), cause)
    for code in ("PATH_NOT_FOUND", "UNABLE_TO_INFER_SCHEMA"):
        if f"[{code}]" in text:
            return InputError(f"cannot read {what}: {java_message(exc)}")
    return None


@contextlib.contextmanager
def read_errors(what: str, sources: Mapping[str, Sequence[str]] | None = None) -> Iterator[None]:
    """Turn a Spark failure to read an input file into one InputError line naming the file (see `read_error`)."""
    try:
        yield
    except (Py4JJavaError, PySparkException) as exc:
        error = read_error(exc, what, sources)
        if error is None:
            raise
        raise error from None
