"""Source images: existence checks (per frame, inside Spark tasks) and placing them in the output."""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql.types import BooleanType, StructField, StructType

from yololake.config import StorageConfig
from yololake.storage import atomic_file, filesystem, local_path


def image_exists(uri: str, storage: StorageConfig) -> bool:
    local = local_path(uri)
    if local is not None:
        return os.path.isfile(local)
    fs, path = filesystem(uri, storage)
    return fs.isfile(path)


def read_image(uri: str, storage: StorageConfig) -> bytes:
    local = local_path(uri)
    if local is not None:
        with open(local, "rb") as f:
            return f.read()
    fs, path = filesystem(uri, storage)
    return fs.cat_file(path)


def add_image_exists(frames: DataFrame, storage: StorageConfig, check_column: str = "frame_reason") -> DataFrame:
    """Add `image_exists` (boolean) for frames whose `check_column` is null; null for the others.

    Runs per partition in Python: a file-system call is the one thing Spark expressions cannot do.
    """
    schema = StructType(frames.schema.fields + [StructField("image_exists", BooleanType())])

    def check(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            todo = batch[check_column].isna()
            batch["image_exists"] = [image_exists(u, storage) if t and isinstance(u, str) else None
                                     for u, t in zip(batch["image_uri"], todo)]
            yield batch

    return frames.mapInPandas(check, schema)


def place_image(source_uri: str, target: str, mode: str, storage: StorageConfig) -> None:
    """Put the source image at local path `target`: a symlink to it (mode link) or a byte copy (mode copy)."""
    local = local_path(source_uri)
    if mode == "link":
        if local is None:
            raise ValueError(f"images.mode link needs images on a local or mounted path, got {source_uri}; "
                             "set images.mode: copy")
        with atomic_file(target) as tmp:
            os.symlink(os.path.abspath(local), tmp)
    elif local is not None:
        shutil.copyfile(local, target)
    else:
        with open(target, "wb") as f:
            f.write(read_image(source_uri, storage))
