"""The on-disk dataset format: every name, path and recipe that build writes and report and train read.

    OUT/dataset.yaml                  the pointer: a copy of the current version's dataset.yaml
    OUT/_yololake_output.json         marks OUT as a versioned yololake output
    OUT/versions/<version id>/        one immutable build (V below), committed when its _SUCCESS exists

    V/dataset.yaml  train.txt val.txt [test.txt]  stats.json  shards.json  _yololake_run.json  _SUCCESS
    V/labels/<split>/<shard>/<key>.txt      (layout shard_archive: V/labels/<split>/<shard>.tar)
    V/images/<split>/<shard>/<key>.<ext>
    V/index/<split>/<shard>.parquet         INDEX_COLUMNS, one row per written frame
    V/quarantine/part-*.parquet

Nothing else declares these; a change to the format is a change here.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import yaml

SPLITS = ("train", "val", "test")
"""YOLO's split names, in the order lists, counts and reports show them."""
REQUIRED_SPLITS = ("train", "val")
"""Splits whose list file is written even when empty: YOLOv5 and ultralytics need both keys."""

SUCCESS = "_SUCCESS"
"""Written last, create-only: a folder without it is not a dataset."""
RUN_MARKER = "_yololake_run.json"
"""Written first: marks a folder as ours, so a failed run of ours may be cleared."""
ABORTED = "_ABORTED"
"""Written by the first shard that fails for good; the other shards skip their work."""
LISTS = "_lists"
"""Per-shard list parts, concatenated into <split>.txt at commit and then removed."""
HEARTBEAT = "_heartbeat"
"""Rewritten by a live build every few seconds: a version folder without _SUCCESS whose heartbeat stopped
is a leftover of a killed run."""
FAILED = "_FAILED"
"""Written by a build that stopped on an error (its reason inside): the folder is kept for inspection
(its quarantine/ says why) and removed by the next build."""
OUTPUT_MARKER = "_yololake_output.json"
VERSIONS = "versions"
VERSION_KEY = "yololake_version"
"""The key in dataset.yaml naming the version (YOLOv5 and ultralytics ignore keys they do not know)."""
SHARDS_JSON = "shards.json"
STATS_JSON = "stats.json"
DATASET_YAML = "dataset.yaml"
LABELS, IMAGES, INDEX, QUARANTINE, REPORT = "labels", "images", "index", "quarantine", "report"

INDEX_COLUMNS = ("key", "frame_id", "split", "shard", "source_image", "ext", "width", "height", "box_count",
                 "status", "image_format", "stored_width", "stored_height", "orientation", "image_bytes",
                 "image_sha256", "yolo_labels")
"""One row per written frame. width/height: the displayed size, which the labels are normalised by (an EXIF
orientation 5-8 swaps the stored sides). image_format, stored_width/height, orientation (EXIF, 1 = none),
image_bytes: what the job read from the source image (null when images.check_exists is false).
image_sha256: of the bytes the job copied (images.mode copy, archived images). yolo_labels: the label file as
YOLOv5's verify_image_label parses it (float32, n rows of 5, flattened): the label cache's content."""
IMAGE_FACT_COLUMNS = ("image_format", "stored_width", "stored_height", "orientation", "image_bytes")
"""The index columns the job reads from each source image (all null when it reads none)."""


def index_schema():
    """The index part's arrow schema, INDEX_COLUMNS in order (every shard the same, whatever is null in it)."""
    import pyarrow as pa

    text, i32 = pa.string(), pa.int32()
    types = {"width": i32, "height": i32, "box_count": i32, "stored_width": i32, "stored_height": i32,
             "orientation": i32, "image_bytes": pa.int64(), "yolo_labels": pa.list_(pa.float32())}
    return pa.schema([(name, types.get(name, text)) for name in INDEX_COLUMNS])


def yolo_labels(text: str):
    """A label file's text as YOLOv5's verify_image_label reads it: float32 rows of 5, exact duplicate rows
    dropped the way it drops them (np.unique, only when there are any). The job writes 5 columns per row."""
    import numpy as np

    rows = np.array([x.split() for x in text.strip().splitlines() if len(x)], dtype=np.float32)
    if not len(rows):
        return np.zeros((0, 5), dtype=np.float32)
    _, i = np.unique(rows, axis=0, return_index=True)
    return rows[i] if len(i) < len(rows) else rows


def yolo_labels_column(texts: Sequence[str]):
    """`yolo_labels` of many label texts at once, as an arrow list<float32> array (the index column).

    One parse for the whole shard instead of one per frame: the texts' tokens are read in a single call
    and cut at each frame's line count. A frame whose rows repeat after the float32 parse, or any text
    that is not 5 tokens per line, goes through `yolo_labels` itself, so the result is always its result."""
    import numpy as np
    import pyarrow as pa

    lines = np.array([t.count("\n") + 1 if t else 0 for t in texts], dtype=np.int64)
    joined = "\n".join(t for t in texts if t)
    flat = np.array(joined.split(), dtype=np.float32)
    # The job's own texts: lines of exactly 4 single spaces (so at least 5 tokens each), nothing blank;
    # then 5 tokens per line on the whole is 5 on each line.
    regular = (flat.size == 5 * lines.sum() and all(t == t.strip() for t in texts)
               and not any(s in joined for s in ("  ", " \n", "\n ", "\n\n"))
               and all(line.count(" ") == 4 for line in joined.split("\n") if joined))
    if not regular:
        return pa.array([yolo_labels(t).ravel() for t in texts], pa.list_(pa.float32()))
    rows = flat.reshape(-1, 5)
    owner = np.repeat(np.arange(len(texts)), lines)
    keyed = np.empty(len(rows), dtype=[("frame", np.int64), ("row", "V20")])
    keyed["frame"], keyed["row"] = owner, np.ascontiguousarray(rows).view("V20").ravel()
    _, first = np.unique(keyed, return_index=True)
    offsets = np.concatenate([[0], np.cumsum(lines * 5)])
    if len(first) < len(rows):  # a repeated row: those frames take YOLOv5's own dedup and order
        later = np.ones(len(rows), dtype=bool)
        later[first] = False
        repeated = set(owner[later].tolist())
        return pa.array([yolo_labels(t).ravel() if i in repeated else flat[offsets[i]:offsets[i + 1]]
                         for i, t in enumerate(texts)], pa.list_(pa.float32()))
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(flat, pa.float32()))


WRITTEN_STATUSES = ("labeled", "background")
"""Frame statuses that are written; every other status names why a frame was not."""

YOLO_IMAGE_FORMATS = ("bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm")
"""Extensions YOLOv5 7.0 accepts (utils/dataloaders.py IMG_FORMATS); it silently skips any other."""


def list_file(split: str) -> str:
    return f"{split}.txt"


def list_part(split: str, shard: str) -> str:
    return f"{LISTS}/{split}/{shard}.txt"


def labels_folder(split: str, shard: str) -> str:
    return f"{LABELS}/{split}/{shard}"


def label_archive(split: str, shard: str) -> str:
    return f"{LABELS}/{split}/{shard}.tar"


def images_folder(split: str, shard: str) -> str:
    return f"{IMAGES}/{split}/{shard}"


def image_file(split: str, shard: str, key: str, ext: str) -> str:
    return f"{images_folder(split, shard)}/{key}.{ext}"


def label_file(split: str, shard: str, key: str) -> str:
    return f"{labels_folder(split, shard)}/{key}.txt"


def index_part(split: str, shard: str) -> str:
    return f"{INDEX}/{split}/{shard}.parquet"


def list_line(split: str, shard: str, image_name: str) -> str:
    """A list file's line: relative to the dataset root, so YOLOv5 maps it to its label by images -> labels."""
    return f"./{images_folder(split, shard)}/{image_name}\n"


def shard_sha256(labels: Iterable[tuple[str, bytes]]) -> str:
    """The digest shards.json records per shard: for each (key, label bytes) in key order, key NUL bytes NUL.
    The writer computes it from memory, staging from the copied files: both through this one recipe."""
    digest = hashlib.sha256()
    for key, data in labels:
        digest.update(f"{key}\0".encode() + data + b"\0")
    return digest.hexdigest()


def version_folder(version_id: str) -> str:
    return f"{VERSIONS}/{version_id}"


def dataset_yaml(root: str, names: Sequence[str], splits: Iterable[str], version_id: str = "") -> bytes:
    """The YOLO data file: absolute `path:` (YOLOv5 resolves a relative one against its install dir),
    one list file per split, `nc` and `names`, and the version it belongs to."""
    names = list(names)
    doc = {"path": root, **{split: list_file(split) for split in splits}, "nc": len(names), "names": names}
    if version_id:
        doc[VERSION_KEY] = version_id
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode("utf-8")


def read_version(data: bytes | str) -> str:
    """The version a dataset.yaml names ('' for a file written by something else)."""
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError:
        return ""
    return str(doc.get(VERSION_KEY) or "") if isinstance(doc, dict) else ""


def read_names(data: bytes | str) -> list[str]:
    """Class names of a dataset.yaml (a list, or YOLOv5's {id: name} mapping); ValueError when there are none."""
    doc = yaml.safe_load(data)
    names = doc.get("names") if isinstance(doc, dict) else None
    if isinstance(names, dict):
        names = list(names.values())
    if not isinstance(names, list):
        raise ValueError(f"{DATASET_YAML} has no `names:` list")
    return [str(n) for n in names]
