"""Tables in and out: input tables (parquet, CSV, JSON) read by Spark with each row's source file, and
DataFrames written as parquet parts through the output Store.

Spark's own writer would need a Hadoop connector for every store (s3a); fsspec already reaches them all.
Part names come from the partition id, so a retried task overwrites its own part with the same rows.
"""
from __future__ import annotations

import functools
import io
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StringType, StructField, StructType

from yololake.config import TableConfig
from yololake.errors import InputError, StorageError
from yololake.input_files import (
    CORRUPT_RECORD,
    EMPTY_FILE,
    HadoopFiles,
    Unreadable,
    check_columns,
    csv_columns,
    display_path,
    read_errors,
    unreadable_error,
)
from yololake.storage import Store, local_path

SOURCE_FILE = "_source_file"
_CHECK_THREADS = 8  # files checked at once (py4j calls; on S3 each is a round trip)
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


@dataclass(frozen=True)
class InputTable:
    df: DataFrame
    """Every row, with its source file (`SOURCE_FILE`); CSV and JSON rows Spark could not parse carry the raw
    line in `_corrupt_record`."""
    unreadable: tuple[Unreadable, ...] = ()
    """Files left out (on_unreadable_file: quarantine): zero-byte, or a parquet footer that cannot be read."""
    names: tuple[str, ...] = ()
    """A labeling tool's export (yololake.importers): its class names, when classes.names is omitted."""
    sizes_from_images: bool = False
    """An export that may lack frame sizes (they come from the images)."""
    cached: tuple[DataFrame, ...] = ()
    """What reading persisted (released with the plan)."""


def read_table(spark: SparkSession, paths: Sequence[str], table: TableConfig, s3_scheme: str = "s3a",
               what: str = "annotations") -> DataFrame:
    """Read one logical table from files and/or folders; see `read_input_table`. Any unreadable file fails."""
    return read_input_table(spark, paths, table, s3_scheme, what).df


def read_input_table(spark: SparkSession, paths: Sequence[str], table: TableConfig, s3_scheme: str = "s3a",
                     what: str = "annotations", required: Sequence[str] = (),
                     on_unreadable: str = "fail") -> InputTable:
    """Read one logical table from files and/or folders; hive folders (`drive=x/`) become columns.

    Nothing is read as empty without a word: a zero-byte file (which Spark skips) or a file Spark cannot read
    fails naming the file, unless `on_unreadable` is "quarantine", which leaves it out and returns it. Each CSV
    file is read by its own header (columns matched by name, not position; a file lacking a `required` column
    fails naming both), as text, so a non-numeric value is quarantined later rather than turned into null; a
    row with the wrong number of fields keeps its raw line in `_corrupt_record`.
    """
    fmt = table.format if table.format != "auto" else detect_format(paths)
    files = HadoopFiles(spark)
    if fmt == "csv":  # a pruned CSV parse skips the field count check, so a short or long row would pass
        spark.conf.set("spark.sql.csv.parser.columnPruning.enabled", "false")
    parts, unreadable = [], []
    for root in spark_paths(paths, s3_scheme):
        with read_errors(what):
            df, bad = _read_root(files, root, fmt, table, what, required, on_unreadable == "quarantine")
        parts.append(df)
        unreadable += bad
    return InputTable(functools.reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), parts),
                      tuple(unreadable))


def _read_root(files: HadoopFiles, root: str, fmt: str, table: TableConfig, what: str, required: Sequence[str],
               quarantine: bool) -> tuple[DataFrame, list[Unreadable]]:
    """One input path: its files checked, then read whole, or file by file group (CSV header, readable ones)."""
    listed = files.list(root)
    if not listed:
        raise InputError(f"{what} path {root} holds no files to read; check --{what}")
    bad = [Unreadable(uri, EMPTY_FILE) for uri in files.empty(listed)]
    if fmt == "parquet" and quarantine:
        empty = {u.path for u in bad}
        with ThreadPoolExecutor(_CHECK_THREADS) as pool:
            problems = pool.map(files.parquet_problem, [uri for uri in listed if uri not in empty])
        bad += [Unreadable(uri, p) for uri, p in zip([u for u in listed if u not in empty], problems) if p]
    if bad and not quarantine:
        more = f" (and {len(bad) - 1} more such file(s))" if len(bad) > 1 else ""
        raise unreadable_error(what, bad[0].path, bad[0].problem + more)
    skipped = {u.path for u in bad}
    good = [uri for uri in listed if uri not in skipped]
    if not good:
        raise InputError(f"{what} path {root}: none of its {len(listed)} file(s) can be read, "
                         f"e.g. {display_path(bad[0].path)}: {bad[0].problem}")
    groups = _csv_groups(files, good, table.csv_header, required) if fmt == "csv" else {(): good}
    if not bad and len(groups) == 1:  # read as given: Spark's own partition discovery and globs
        return _read_files(files.spark, fmt, table, [root], None, next(iter(groups))), bad
    base = root if files.is_dir(root) else None
    dfs = [_read_files(files.spark, fmt, table, group, base, columns) for columns, group in groups.items()]
    return functools.reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), dfs), bad


def _csv_groups(files: HadoopFiles, uris: Sequence[str], header: bool,
                required: Sequence[str]) -> dict[tuple[str, ...], list[str]]:
    """CSV files grouped by their columns (each file's own header), checked for the required columns."""
    with ThreadPoolExecutor(_CHECK_THREADS) as pool:
        lines = list(pool.map(files.first_line, uris))
    groups: dict[tuple[str, ...], list[str]] = {}
    for uri, line in zip(uris, lines):
        columns = csv_columns(uri, line, header)
        check_columns(uri, columns, required)
        groups.setdefault(columns, []).append(uri)
    return groups


def _read_files(spark: SparkSession, fmt: str, table: TableConfig, sources: list[str], base: str | None,
                columns: tuple[str, ...]) -> DataFrame:
    reader = spark.read.option("mode", "PERMISSIVE")
    if base:
        reader = reader.option("basePath", base)  # files listed one by one keep their hive columns
    if fmt == "csv":
        schema = StructType([StructField(c, StringType()) for c in (*columns, CORRUPT_RECORD)])
        # enforceSchema false: Spark checks every file's header against these names too.
        df = reader.schema(schema).option("header", table.csv_header).option("enforceSchema", False).csv(sources)
    elif fmt == "json":
        df = reader.json(sources)
    else:
        df = reader.parquet(*sources)
    return df.withColumn(SOURCE_FILE, F.input_file_name())


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def write_parquet_parts(df: DataFrame, store: Store, folder: str, count_by: str | None = None) -> dict:
    """Write `df` under `folder` as part-NNNNN.parquet (one per non-empty partition); return the rows written
    by value of the string column `count_by` (all under None without it), counted by the writing tasks."""
    schema = to_arrow_schema(df.schema)

    def write(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from pyspark import TaskContext

        frames = [b for b in batches if len(b)]
        error = None
        data = pd.concat(frames, ignore_index=True) if frames else None
        if data is not None:
            table = pa.Table.from_pandas(data, schema=schema, preserve_index=False)
            try:
                store.put(f"{folder}/part-{TaskContext.get().partitionId():05d}.parquet", _parquet_bytes(table))
            except StorageError as exc:  # the client already retried; a Spark retry would multiply that
                error = str(exc)
        counts = (data[count_by].value_counts(dropna=False) if count_by and data is not None
                  else pd.Series({None: 0 if data is None else len(data)}, dtype="int64"))
        yield pd.DataFrame({"value": [None if pd.isna(v) else v for v in counts.index],
                            "rows": counts.to_numpy(), "error": error})

    results = df.mapInPandas(write, "value string, rows long, error string").collect()  # a few rows per partition
    errors = [r["error"] for r in results if r["error"]]
    if errors:
        raise StorageError(errors[0])
    totals: dict = {}
    for r in results:
        if r["rows"]:
            totals[r["value"]] = totals.get(r["value"], 0) + r["rows"]
    if not totals:  # readers still find a (typed, empty) table
        store.put(f"{folder}/part-00000.parquet", _parquet_bytes(schema.empty_table()))
    return totals
