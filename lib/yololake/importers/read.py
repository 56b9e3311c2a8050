"""Dispatch to the importer of annotations.format, and the tables the build job reads from its result."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from yololake.errors import InputError
from yololake.importers.common import BOX, Imported
from yololake.importers.formats import IMPORT_FORMATS
from yololake.tables import InputTable


def read_export(spark: SparkSession, config, paths: Sequence[str], frames: Sequence[str] = ()) -> Imported:
    """The export at `paths` in the format annotations.format names; `frames` (an extract-frames manifest)
    only for a CVAT video export."""
    fmt = config.annotations.format  # --frames with another format: refused by build.config.check_run
    if fmt == "coco":
        from yololake.importers.coco import read_coco
        return read_coco(spark, paths, config)
    if fmt == "voc":
        from yololake.importers.voc import read_voc
        return read_voc(spark, paths, config)
    if fmt == "cvat":
        from yololake.importers.cvat import read_cvat
        return read_cvat(spark, paths, config, frames)
    if fmt == "labelstudio":
        from yololake.importers.labelstudio import read_labelstudio
        return read_labelstudio(spark, paths, config)
    if fmt == "groundtruth":
        from yololake.importers.groundtruth import read_groundtruth
        return read_groundtruth(spark, paths, config)
    raise ValueError(f"not an export format: {fmt!r}")


def class_names(imported: Imported) -> tuple[str, ...]:
    """The export's class names: its own list, or (VOC, Label Studio) the distinct names found, sorted (as
    label-studio-converter orders its class ids)."""
    if imported.names:
        return imported.names
    rows = imported.annotations.where(F.col("class").isNotNull() & F.col("_corrupt_record").isNull()).select(
        "class").distinct().collect()  # one row per class
    return tuple(sorted(r["class"] for r in rows))


def import_tables(spark: SparkSession, config, paths: Sequence[str],
                  frames: Sequence[str] = ()) -> tuple[InputTable, DataFrame]:
    """The export as the tables the build reads: annotations (columns named as the config's annotations
    section names them; box format xyxy_pixel) and the frame table (named as its frames section)."""
    imported = read_export(spark, config, paths, frames)
    ann, fc = config.annotations, config.frames
    names = () if config.classes.names else class_names(imported)
    columns = dict(zip(("frame", "class", *BOX), (ann.frame_column, ann.class_column, *ann.box_columns)))
    boxes = imported.annotations.withColumnsRenamed(columns)
    frame_table = imported.frames.withColumnsRenamed(
        dict(zip(("frame", "image", "width", "height"),
                 (fc.frame_column, fc.image_column, fc.width_column, fc.height_column))))
    return InputTable(boxes, (), names, imported.sizes_from_images, imported.cached), frame_table


def with_export_classes(config, table: InputTable):
    """The config with classes.names taken from the export when it omits them (else unchanged)."""
    if config.classes.names or config.annotations.format not in IMPORT_FORMATS:
        return config
    if not table.names:
        raise InputError(f"the {config.annotations.format} export names no class (no category, label or box "
                         "with a class name); set classes.names in the config")
    from yololake.build.config import ClassesConfig

    return dataclasses.replace(config, classes=ClassesConfig(names=tuple(table.names)))
