"""SageMaker Ground Truth object-detection output manifests: JSON lines, read by Spark natively.

Schema (SageMaker docs, "Bounding box job output"): per line `source-ref` (the image, usually s3://),
`<attribute>.image_size` [{width, height, depth}], `<attribute>.annotations` [{class_id, left, top, width,
height}] in pixels, `<attribute>-metadata.class-map` {"<class_id>": "<name>"}. The attribute is the labeling
job's name: annotations.attribute, or else the one top-level key with a `<key>-metadata` twin. Class names come
from the class-map (classes.names omitted: every class-map's names, ordered by class id); a class id the
class-map does not name is unknown_class. A line without annotations is a background frame; a line that is not
JSON is malformed_row (Spark keeps its text).
"""
from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from yololake.errors import InputError
from yololake.importers.common import ANN_FIELDS, Imported
from yololake.input_files import CORRUPT_RECORD
from yololake.tables import SOURCE_FILE, read_input_table


def find_attribute(schema: StructType, configured: str) -> str:
    columns = {f.name: f for f in schema.fields}
    candidates = [c for c in columns if f"{c}-metadata" in columns and isinstance(columns[c].dataType, StructType)]
    if configured:
        if configured not in columns:
            raise InputError(f"annotations.attribute {configured!r} is not a key of the Ground Truth manifest; "
                             f"its keys: {', '.join(c for c in columns if not c.startswith('_'))}")
        return configured
    if len(candidates) != 1:
        found = ", ".join(candidates) or "none"
        raise InputError(f"cannot tell the Ground Truth labeling attribute (keys with a -metadata twin: {found}); "
                         "set annotations.attribute to the labeling job's attribute name")
    return candidates[0]


def read_groundtruth(spark: SparkSession, paths, config) -> Imported:
    table = read_input_table(spark, list(paths), type(config.annotations)(format="json"),
                             config.storage.spark_s3_scheme, "annotations")
    df = table.df
    attr = find_attribute(df.schema, config.annotations.attribute)
    a, meta = F.col(f"`{attr}`"), F.col(f"`{attr}-metadata`")
    class_map = F.from_json(F.to_json(meta["class-map"]), "map<string,string>")
    corrupt = F.col(CORRUPT_RECORD) if CORRUPT_RECORD in df.columns else F.lit(None).cast("string")
    ref = F.col("`source-ref`").cast("string")
    frame = F.url_decode(F.regexp_extract(ref, r"([^/?#]+)(?:[?#].*)?$", 1))  # as common.frame_id
    size = a["image_size"][0]
    lines = df.select(frame.alias("frame"), ref.alias("image"), size["width"].cast("int").alias("width"),
                      size["height"].cast("int").alias("height"), class_map.alias("class_map"),
                      a["annotations"].alias("anns"), corrupt.alias(CORRUPT_RECORD), SOURCE_FILE,
                      ).persist()
    box = F.col("ann")
    left, top = box["left"].cast("double"), box["top"].cast("double")
    cid = box["class_id"].cast("long").cast("string")
    valid = lines.where(F.col(CORRUPT_RECORD).isNull())
    boxes = valid.select("*", F.posexplode("anns").alias("pos", "ann")).select(
        "frame", F.coalesce(F.element_at("class_map", cid), F.concat(F.lit("class_id="), cid)).alias("class"),
        left.alias("xmin"), top.alias("ymin"), (left + box["width"].cast("double")).alias("xmax"),
        (top + box["height"].cast("double")).alias("ymax"), F.lit(None).cast("string").alias("_import_reason"),
        F.concat(F.lit("annotations["), F.col("pos").cast("string"), F.lit("]")).alias("_position"),
        F.lit(None).cast("string").alias(CORRUPT_RECORD), SOURCE_FILE)
    bad = lines.where(F.col(CORRUPT_RECORD).isNotNull()).select(
        *[F.lit(None).cast("string").alias(c) for c in ("frame", "class")],
        *[F.lit(None).cast("double").alias(c) for c in ("xmin", "ymin", "xmax", "ymax")],
        F.lit(None).cast("string").alias("_import_reason"), F.lit("line").alias("_position"), CORRUPT_RECORD,
        SOURCE_FILE)
    frames = valid.select("frame", "image", "width", "height")
    names = None
    if not config.classes.names:
        pairs = (valid.select(F.explode("class_map").alias("id", "name")).distinct()
                 .orderBy(F.col("id").try_cast("long"), "id", "name").collect())  # one row per class
        names = tuple(dict.fromkeys(r["name"] for r in pairs))
    return Imported(boxes.unionByName(bad).select(*ANN_FIELDS), frames, names, cached=(lines,))
