"""Tables in and out: input tables (parquet, CSV, JSON) read by Spark with each row's source file, and
DataFrames written as parquet parts through the output Store.

Spark's own writer would need a Hadoop connector for every store (s3a); fsspec already reaches them all.
Part names come from the partition id, so a retried task overwrites its own part with the same rows.
"""
from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema

from yololake.config import TableConfig
from yololake.errors import InputError, StorageError
from yololake.storage import Store, local_path

SOURCE_FILE = "_source_file"
TABLE_EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json"}


def detect_format(paths: Sequence[str]) -> str:
    """Guess the table format from file extensions (of the paths, or of files inside local folders)."""
    found: set[str] = set()
    for uri in paths:
        local = local_path(uri)
        names = [uri]
        if local is not None and os.path.isdir(local):
            names = [name for _, _, files in os.walk(local) for name in files
                     if not name.startswith((".", "_"))]
        found.update(TABLE_EXTENSIONS[ext] for ext in (os.path.splitext(n)[1].lower() for n in names) if ext in TABLE_EXTENSIONS)
    if len(found) != 1:
        what = "no parquet, csv or json files" if not found else f"several formats ({', '.join(sorted(found))})"
        raise InputError(f"cannot tell the table format of {', '.join(paths)}: found {what}; "
                         "set `format:` in the config")
    return found.pop()


_URI_OR_ABSOLUTE = r"^([A-Za-z][A-Za-z0-9+.-]*://|/)"


def resolve_uri(value: Column, base: str) -> Column:
    """Relative paths in a table column are taken relative to `base`; absolute paths and URLs stay."""
    return F.when(value.rlike(_URI_OR_ABSOLUTE), value).otherwise(F.concat(F.lit(base.rstrip("/") + "/"), value))


def check_paths_exist(paths: Sequence[str], what: str) -> None:
    """Fail before Spark starts when a local input path is missing (remote paths are Spark's to check)."""
    for uri in paths:
        local = local_path(uri)
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


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def write_parquet_parts(df: DataFrame, store: Store, folder: str) -> int:
    """Write `df` under `folder` as part-NNNNN.parquet (one per non-empty partition); return the row count."""
    schema = to_arrow_schema(df.schema)

    def write(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from pyspark import TaskContext

        frames = [b for b in batches if len(b)]
        rows, error = sum(len(b) for b in frames), None
        if rows:
            table = pa.Table.from_pandas(pd.concat(frames, ignore_index=True), schema=schema, preserve_index=False)
            try:
                store.put(f"{folder}/part-{TaskContext.get().partitionId():05d}.parquet", _parquet_bytes(table))
            except StorageError as exc:  # the client already retried; a Spark retry would multiply that
                error = str(exc)
        yield pd.DataFrame({"rows": [rows], "error": [error]})

    results = df.mapInPandas(write, "rows long, error string").collect()  # one small row per partition
    errors = [r["error"] for r in results if r["error"]]
    if errors:
        raise StorageError(errors[0])
    total = sum(r["rows"] for r in results)
    if total == 0:  # readers still find a (typed, empty) table
        store.put(f"{folder}/part-00000.parquet", _parquet_bytes(schema.empty_table()))
    return total
