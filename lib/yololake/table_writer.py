"""Write a DataFrame as parquet parts through the output Store, from the executors.

Spark's own writer would need a Hadoop connector for every store (s3a); fsspec already reaches them all.
Part names come from the partition id, so a retried task overwrites its own part with the same rows.
"""
from __future__ import annotations

import io
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame
from pyspark.sql.pandas.types import to_arrow_schema

from yololake.storage import StorageError, Store


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
