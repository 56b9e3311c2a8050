"""What every importer shares: the standard tables it yields, frame ids from image references, rotated boxes,
and the two ways an export reaches Spark (XML files parsed in tasks; one big JSON streamed into staged chunks).

An importer yields two DataFrames:
- annotations (ANN_SCHEMA): one row per box (or per record it could not read): frame, class (the tool's class
  *name*), xmin, ymin, xmax, ymax in pixels of the export's image size, `_import_reason` (a reason code the
  export itself gives, e.g. crowd_box), `_position` (where in the export: "annotations[12]", "image 3 box 2"),
  `_corrupt_record` (set for a record that could not be read: the row is quarantined as malformed_row),
  `_source_file`;
- frames (FRAME_SCHEMA): frame, image (as the export names it; relative ones resolve against --images), width,
  height. Frames without boxes are background frames.
"""
from __future__ import annotations

import atexit
import math
import os
import posixpath
import shutil
import tempfile
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

from yololake.config import StorageConfig
from yololake.input_files import CORRUPT_RECORD
from yololake.storage import filesystem, local_path
from yololake.tables import SOURCE_FILE, spark_paths

BOX = ("xmin", "ymin", "xmax", "ymax")
ANN_FIELDS = ("frame", "class", *BOX, "_import_reason", "_position", CORRUPT_RECORD, SOURCE_FILE)
ANN_SCHEMA = ("frame string, class string, xmin double, ymin double, xmax double, ymax double, "
              f"_import_reason string, _position string, {CORRUPT_RECORD} string, {SOURCE_FILE} string")
FRAME_FIELDS = ("frame", "image", "width", "height")
FRAME_SCHEMA = "frame string, image string, width int, height int"
OPEN_COST = "spark.sql.files.openCostInBytes"
ARROW_TYPES = {"string": pa.string(), "double": pa.float64(), "int": pa.int32(), "long": pa.int64()}


@dataclass(frozen=True)
class Imported:
    annotations: DataFrame
    frames: DataFrame
    names: tuple[str, ...] | None = None
    """The export's own class list in its documented order; None: the sorted distinct class names found."""
    sizes_from_images: bool = False
    """The export may lack a frame's size (a Label Studio task without boxes): the images give the sizes."""
    cached: tuple[DataFrame, ...] = ()


def ann_row(frame=None, cls=None, box=(None, None, None, None), reason=None, position=None, corrupt=None,
            source=None) -> dict:
    return dict(zip(ANN_FIELDS, (frame, cls, *box, reason, position, corrupt, source)))


def frame_row(frame, image, width, height) -> dict:
    return {"frame": frame, "image": image, "width": whole(width), "height": whole(height)}


def whole(value) -> int | None:
    """A size as an int (None when missing or not a number)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) else None


def number(value) -> float | None:
    """A coordinate as a float; None when missing; NaN when not a number (quarantined as non-numeric)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def frame_id(reference: str | None) -> str | None:
    """The frame id of an image reference: its file name (URL query and fragment dropped, %-escapes decoded).
    Two images with one file name in different folders share a frame id and are quarantined as ambiguous."""
    if not reference:
        return None
    path = urllib.parse.urlsplit(reference).path if "://" in reference else reference
    return posixpath.basename(urllib.parse.unquote(path).replace("\\", "/")) or None


def bounding_box(corners: Iterable[tuple[float, float]]) -> tuple[float, float, float, float]:
    xs, ys = zip(*corners)
    return min(xs), min(ys), max(xs), max(ys)


def rotated_corners(x1: float, y1: float, x2: float, y2: float, degrees: float,
                    pivot: tuple[float, float]) -> list[tuple[float, float]]:
    """The corners of box (x1, y1, x2, y2) turned `degrees` clockwise on screen (y down) about `pivot`."""
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    px, py = pivot
    return [(px + (x - px) * c - (y - py) * s, py + (x - px) * s + (y - py) * c)
            for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2))]


def rows_frame(rows: list[dict], fields: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({f: [r.get(f) for r in rows] for f in fields})


def _arrow_schema(ddl: str) -> pa.Schema:
    return pa.schema([(name, ARROW_TYPES[kind]) for name, kind in (c.strip().split(" ") for c in ddl.split(","))])


class Staging:
    """Parquet chunks of streamed rows, written in bounded batches to a folder Spark reads: the driver never
    holds more than one batch of an export. Local temporary folders are removed when the process exits."""

    def __init__(self, root: str, storage: StorageConfig, batch: int = 100_000):
        if not root:
            root = tempfile.mkdtemp(prefix="yololake-import-")
            atexit.register(shutil.rmtree, root, True)
        self.root, self.storage, self.batch = f"{root.rstrip('/')}/{uuid.uuid4().hex}", storage, batch
        self.fs, self.path = filesystem(self.root, storage)
        self.fs.makedirs(self.path, exist_ok=True)

    def write(self, name: str, rows: Iterable[dict], ddl: str) -> str:
        """All `rows` as parquet chunks under <root>/<name>/ (one empty chunk when there are none); its URL."""
        schema, folder, part, buffer = _arrow_schema(ddl), f"{self.path}/{name}", 0, []
        self.fs.makedirs(folder, exist_ok=True)

        def flush() -> None:
            nonlocal part, buffer
            table = pa.Table.from_pylist(buffer, schema=schema)
            with self.fs.open(f"{folder}/part-{part:05d}.parquet", "wb") as f:
                pq.write_table(table, f)
            part, buffer = part + 1, []

        for row in rows:
            buffer.append(row)
            if len(buffer) >= self.batch:
                flush()
        if buffer or part == 0:
            flush()
        return f"{self.root}/{name}"


def read_staged(spark: SparkSession, url: str, scheme: str) -> DataFrame:
    return spark.read.parquet(spark_paths([url], scheme)[0])


def stream_export(spark: SparkSession, config, paths, name: str, rows: Callable[[list[str]], Iterable[dict]],
                  ddl: str, staging: Staging | None = None) -> DataFrame:
    """The JSON export files at `paths` (files, or the .json files of folders) streamed through `rows(files)`
    into staged parquet chunks, read back by Spark."""
    storage = config.storage
    files = [f for uri in paths for f in export_files(uri, storage, (".json",))]
    staging = staging or Staging(config.annotations.staging, storage)
    return read_staged(spark, staging.write(name, rows(files), ddl), storage.spark_s3_scheme)


def parse_xml(path: str, content: bytes, root_tag: str, what: str) -> tuple[object, dict | None]:
    """(the XML root, None), or (None, the malformed row of a file that is not a `what` XML file)."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(content)
        if root.tag != root_tag:
            raise ValueError(f"root element is <{root.tag}>, not <{root_tag}>")
        return root, None
    except (ET.ParseError, ValueError) as exc:
        return None, {"kind": "box", **ann_row(corrupt=f"not a {what} XML file: {exc}", position="file",
                                               source=path)}


def open_export(uri: str, storage: StorageConfig):
    """A binary file object of an export file (local or any fsspec URL), read as a stream."""
    local = local_path(uri)
    if local is not None:
        return open(local, "rb")
    fs, path = filesystem(uri, storage)
    return fs.open(path, "rb")


def export_files(uri: str, storage: StorageConfig, suffixes: tuple[str, ...]) -> list[str]:
    """An export file, or the export files (by suffix) directly in a folder: a few, never a million."""
    local = local_path(uri)
    if local is not None:
        if not os.path.isdir(local):
            return [uri]
        return sorted(os.path.join(local, n) for n in os.listdir(local) if n.lower().endswith(suffixes))
    fs, path = filesystem(uri, storage)
    if not fs.isdir(path):
        return [uri]
    return sorted(fs.unstrip_protocol(p) for p in fs.ls(path, detail=False) if p.lower().endswith(suffixes))


def files_in_tasks(spark: SparkSession, paths: list[str], scheme: str, glob: str,
                   parse: Callable[[str, bytes], Iterator[dict]], fields: tuple[str, ...], ddl: str) -> DataFrame:
    """Every file matching `glob` under `paths`, listed and read by Spark (binaryFile) and parsed by
    `parse(path, content)` inside the tasks, one file at a time: nothing is listed or parsed on the driver."""
    if spark.conf.get(OPEN_COST, None) in (None, "4194304", "4MB"):
        # Spark's default counts each file as 4 MB read: 32 XML files of 1 KB a task, thousands of tasks for a
        # VOC export. Counted as 64 KB, a task parses about 2,000 of them. Only the default is replaced.
        spark.conf.set(OPEN_COST, str(64 * 1024))
    files = (spark.read.format("binaryFile").option("pathGlobFilter", glob).option("recursiveFileLookup", "true")
             .load(spark_paths(paths, scheme)).select("path", "content"))

    def parse_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            rows = [row for path, content in zip(batch["path"], batch["content"]) for row in parse(path, content)]
            yield rows_frame(rows, fields)

    return files.mapInPandas(parse_partition, ddl)



def stream_items(uri: str, prefix: str, storage: StorageConfig) -> Iterator[tuple[int, object]]:
    """(index, item) of the JSON array at ijson `prefix` of one export file, streamed (never loaded whole).
    A syntax error ends the stream with (index, JsonSyntaxError): what was read before it is kept."""
    import ijson

    with open_export(uri, storage) as f:
        index = 0
        try:
            for index, item in enumerate(ijson.items(f, prefix, use_float=True)):
                yield index, item
            return
        except ijson.JSONError as exc:
            yield index + 1, JsonSyntaxError(f"JSON syntax error after item {index} of {prefix}: {exc}")


class JsonSyntaxError(str):
    """The problem of an export whose JSON breaks off: one malformed row; the items before it are read."""


def record_text(record: object, limit: int = 2000) -> str:
    import json

    return json.dumps(record, default=str)[:limit]
