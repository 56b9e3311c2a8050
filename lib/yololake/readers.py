"""Read input tables (parquet, CSV, JSON) into DataFrames, remembering each row's source file."""
from __future__ import annotations

import os
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from yololake.config import TableConfig

SOURCE_FILE = "_source_file"
_EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json"}


class InputError(ValueError):
    """An input path that cannot be read as configured; the message names the path and the fix."""


def _local_path(uri: str) -> str | None:
    if uri.startswith("file://"):
        return uri[len("file://"):]
    return None if "://" in uri else uri


def detect_format(paths: Sequence[str]) -> str:
    """Guess the table format from file extensions (of the paths, or of files inside local folders)."""
    found: set[str] = set()
    for uri in paths:
        local = _local_path(uri)
        names = [uri]
        if local is not None and os.path.isdir(local):
            names = [name for _, _, files in os.walk(local) for name in files
                     if not name.startswith((".", "_"))]
        found.update(_EXTENSIONS[ext] for ext in (os.path.splitext(n)[1].lower() for n in names) if ext in _EXTENSIONS)
    if len(found) != 1:
        what = "no parquet, csv or json files" if not found else f"several formats ({', '.join(sorted(found))})"
        raise InputError(f"cannot tell the table format of {', '.join(paths)}: found {what}; "
                         "set `format:` in the config")
    return found.pop()


def check_paths_exist(paths: Sequence[str], what: str) -> None:
    """Fail before Spark starts when a local input path is missing (remote paths are Spark's to check)."""
    for uri in paths:
        local = _local_path(uri)
        if local is not None and not os.path.exists(local):
            raise InputError(f"{what} path {uri} does not exist; check --{what}")


def spark_paths(paths: Sequence[str], s3_scheme: str = "s3a") -> list[str]:
    """s3:// and s3a:// URLs in the scheme this cluster's Spark reads S3 with (s3a: Hadoop's connector)."""
    out = []
    for uri in paths:
        for scheme in ("s3://", "s3a://"):
            if uri.startswith(scheme):
                uri = f"{s3_scheme}://{uri[len(scheme):]}"
                break
        out.append(uri)
    return out


def read_table(spark: SparkSession, paths: Sequence[str], table: TableConfig, s3_scheme: str = "s3a") -> DataFrame:
    """Read one logical table from files and/or folders; hive folders (`drive=x/`) become columns.

    CSV is read as text (no schema inference) so a non-numeric value is quarantined later,
    not silently turned into null by the reader.
    """
    fmt = table.format if table.format != "auto" else detect_format(paths)
    reader = spark.read.option("mode", "PERMISSIVE")
    paths = spark_paths(paths, s3_scheme)
    if fmt == "csv":
        df = reader.option("header", table.csv_header).option("inferSchema", False).csv(paths)
    elif fmt == "json":
        df = reader.json(paths)
    else:
        df = reader.parquet(*paths)
    return df.withColumn(SOURCE_FILE, F.input_file_name())
