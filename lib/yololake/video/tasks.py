"""The Spark side of frame extraction: list videos, check ids, plan segments, extract frames.

Listing and id checks are DataFrame transforms; probing and decoding run per partition in Python
(mapInPandas), the one place PyAV can run.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from fractions import Fraction

import fsspec
import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from yololake.config import StorageConfig, TableConfig
from yololake.errors import InputError
from yololake.storage import Store, fsspec_options, local_path
from yololake.tables import TABLE_EXTENSIONS, read_table, resolve_uri
from yololake.video import decode as D
from yololake.video import sampling as S
from yololake.video.config import InputConfig

_SAFE_ID = r"^[^/\\\x00-\x1F\x7F]{1,180}$"   # the same rule as sampling.is_safe_video_id


def _schema(*fields: tuple[str, type]) -> StructType:
    return StructType([StructField(name, kind(), True) for name, kind in fields])


VIDEOS_SCHEMA = _schema(("video_id", StringType), ("uri", StringType))
PLAN_SCHEMA = _schema(
    ("video_id", StringType), ("uri", StringType), ("segment", LongType), ("seg_start", StringType),
    ("seg_end", StringType), ("stream_index", LongType), ("time_base", StringType), ("rate", StringType),
    ("start_pts", LongType), ("n_frames", LongType), ("every_n", LongType), ("step", StringType),
    ("limit", LongType), ("reason", StringType), ("detail", StringType))
MANIFEST_COLUMNS = ("frame_id", "video_id", "frame_index", "pts", "time_base", "timestamp_ms", "image",
                    "width", "height", "bytes")
EXTRACT_SCHEMA = _schema(
    ("kind", StringType), ("frame_id", StringType), ("video_id", StringType), ("frame_index", LongType),
    ("pts", LongType), ("time_base", StringType), ("timestamp_ms", LongType), ("image", StringType),
    ("width", LongType), ("height", LongType), ("bytes", LongType), ("uri", StringType), ("segment", LongType),
    ("decoded", LongType), ("kept", LongType), ("reason", StringType), ("detail", StringType))
_BATCH_ROWS = 2000


def _frame(rows: list[dict], schema: StructType) -> pd.DataFrame:
    """Rows -> pandas with explicit dtypes: an all-null column must stay text/integer, not float NaN."""
    return pd.DataFrame({f.name: pd.array([r.get(f.name) for r in rows],
                                          dtype="Int64" if isinstance(f.dataType, LongType) else object)
                         for f in schema.fields})


def input_format(videos: str, config: InputConfig) -> str:
    if config.format != "auto":
        return config.format
    return TABLE_EXTENSIONS.get(os.path.splitext(videos.rstrip("/"))[1].lower(), "folder")


def list_video_files(videos: str, storage: StorageConfig) -> list[tuple[str, str]]:
    """(file stem, URI) of every file under `videos` except hidden and marker files (`.x`, `_SUCCESS`).

    Names only, on the driver, as Spark lists its own input files; a non-video file is listed too, so
    it is quarantined with a reason rather than silently skipped.
    """
    fs, root = fsspec.core.url_to_fs(videos, **fsspec_options(videos, storage))
    if not fs.exists(root):
        raise InputError(f"--videos {videos} does not exist; check the path")
    paths = [root] if fs.isfile(root) else fs.find(root)
    local = isinstance(fs, fsspec.implementations.local.LocalFileSystem)
    found = []
    for path in sorted(paths):
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if name.startswith((".", "_")):
            continue
        found.append((os.path.splitext(name)[0], os.path.abspath(path) if local else fs.unstrip_protocol(path)))
    if not found:
        raise InputError(f"--videos {videos} holds no files; point it at a folder of videos or a table")
    return found


def read_videos(spark: SparkSession, videos: str, config: InputConfig, storage: StorageConfig) -> DataFrame:
    """video_id, uri: from the files of a folder, or from a table (relative URIs: against its folder)."""
    fmt = input_format(videos, config)
    if fmt == "folder":
        return spark.createDataFrame(list_video_files(videos, storage), VIDEOS_SCHEMA)
    table = read_table(spark, [videos], TableConfig(format=fmt, csv_header=config.csv_header), what="videos")
    missing = [c for c in (config.id_column, config.uri_column) if c not in table.columns]
    if missing:
        raise InputError(f"--videos table {videos} has no column {missing[0]!r}; it has "
                         f"{', '.join(c for c in table.columns if not c.startswith('_'))}. Set input.id_column "
                         "/ input.uri_column in the config")
    base = os.path.dirname(videos.rstrip("/")) if os.path.splitext(videos)[1] else videos
    local = local_path(base)
    base = os.path.abspath(local) if local is not None else base
    return table.select(F.col(f"`{config.id_column}`").cast("string").alias("video_id"),
                        resolve_uri(F.col(f"`{config.uri_column}`").cast("string"), base).alias("uri"))


def check_video_ids(videos: DataFrame, partitions: int) -> DataFrame:
    """Add `reason`: unsafe_video_id (could leave the output folder) or duplicate_video_id; null when fine.

    Hash-partitioned by video id into `partitions` first: the duplicate check needs no further shuffle,
    and the probe step runs on these partitions as they are.
    """
    vid = F.col("video_id")
    safe = F.coalesce(vid.rlike(_SAFE_ID) & ~vid.startswith(".") & (vid == F.trim(vid)), F.lit(False))
    dupes = F.count(F.lit(1)).over(Window.partitionBy("video_id"))
    reason = (F.when(~safe, F.lit(D.UNSAFE_VIDEO_ID))
              .when(dupes > 1, F.lit(D.DUPLICATE_VIDEO_ID)))
    return videos.repartition(partitions, "video_id").withColumn("reason", reason)


def make_planner(every_n: int, fps: float, max_frames: int, segment_seconds: float,
                 storage: StorageConfig) -> Callable:
    """mapInPandas function: (video_id, uri) -> one PLAN_SCHEMA row per segment, or one row with a reason."""
    fps_f = S.fraction(fps) if fps else None
    seconds = S.fraction(segment_seconds)

    def plan(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            rows = []
            for video_id, uri in zip(batch["video_id"], batch["uri"]):
                try:
                    info = D.probe(uri, fsspec_options(uri, storage))
                except D.VideoError as exc:
                    rows.append({"video_id": video_id, "uri": uri, "reason": exc.reason, "detail": exc.detail})
                    continue
                policy = S.choose_policy(every_n, fps_f, max_frames, info.n_frames, info.rate)
                for seg in S.plan_segments(info.duration, seconds):
                    rows.append({
                        "video_id": video_id, "uri": uri, "segment": seg.index,
                        "seg_start": None if seg.start is None else str(seg.start),
                        "seg_end": None if seg.end is None else str(seg.end),
                        "stream_index": info.stream_index, "time_base": str(info.time_base),
                        "rate": str(info.rate), "start_pts": info.start_pts, "n_frames": info.n_frames,
                        **policy.to_row()})
            yield _frame(rows, PLAN_SCHEMA)

    return plan


def _info(row) -> D.VideoInfo:
    return D.VideoInfo(int(row.stream_index), Fraction(row.time_base), Fraction(row.rate), int(row.start_pts),
                       int(row.n_frames), Fraction(0), 0, 0)


def extract_segment(row, store: Store, quality: int, max_side: int) -> Iterator[dict]:
    """Decode one planned segment: a 'frame' row per written JPEG, then one 'segment' row with the counts."""
    if not S.is_safe_video_id(row.video_id):   # checked in Spark already; never build a path from it
        yield {"kind": "segment", "video_id": None, "uri": row.uri, "segment": row.segment, "decoded": 0,
               "kept": 0, "reason": D.UNSAFE_VIDEO_ID, "detail": repr(row.video_id)}
        return
    info = _info(row)
    segment = S.Segment(int(row.segment), Fraction(row.seg_start) if row.seg_start else None,
                        Fraction(row.seg_end) if row.seg_end else None)
    policy = S.Policy.from_row(row.every_n, row.step, row.limit)
    result = D.SegmentResult()
    options = fsspec_options(row.uri, store.storage)
    for frame, pts, index, t in D.decode_segment(row.uri, info, segment, result, options):
        if not S.keep(policy, index, t, info.rate):
            continue
        data, width, height = D.encode_jpeg(frame, quality, max_side)
        fid = S.frame_id(row.video_id, pts)
        rel = f"frames/{row.video_id}/{fid}.jpg"
        store.put(rel, data)  # same name and bytes on every attempt: a retried task rewrites its own files
        result.kept += 1
        yield {"kind": "frame", "frame_id": fid, "video_id": row.video_id, "frame_index": index, "pts": pts,
               "time_base": str(info.time_base), "timestamp_ms": S.timestamp_ms(pts, info.time_base),
               "image": store.display(rel), "width": width,
               "height": height, "bytes": len(data), "uri": row.uri, "segment": segment.index}
    error = D.check_complete(info, segment, result)
    yield {"kind": "segment", "video_id": row.video_id, "uri": row.uri, "segment": segment.index,
           "decoded": result.decoded, "kept": result.kept, "reason": error and error.reason,
           "detail": error and error.detail}


def make_extractor(store: Store, quality: int, max_side: int) -> Callable:
    """mapInPandas function: PLAN_SCHEMA segment rows -> EXTRACT_SCHEMA rows."""
    def extract(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        out: list[dict] = []
        for batch in batches:
            for row in batch.itertuples(index=False):
                for item in extract_segment(row, store, quality, max_side):
                    out.append(item)
                    if len(out) >= _BATCH_ROWS:
                        yield _frame(out, EXTRACT_SCHEMA)
                        out = []
        if out:
            yield _frame(out, EXTRACT_SCHEMA)

    return extract
