"""The pure transforms on tiny inline DataFrames: one case per reason code, box format, clip and swap."""
from __future__ import annotations

import pytest
from pyspark.sql import functions as F
from yololake.build.transforms.annotations import (
    assign_reason,
    fixed6,
    label_line,
    map_classes,
    standardize_annotations,
    to_yolo_boxes,
)
from yololake.build.transforms.frames import (
    assign_shards,
    assign_split_by_hash,
    assign_split_from_values,
    check_frames,
    shard_buckets,
)
from yololake.dataset import reasons as R
from yololake.errors import InputError
from yololake.tables import SOURCE_FILE

COLUMNS = ["frame", "label", "a", "b", "c", "d"]


def _boxes(spark, rows, box_format="xyxy_pixel", width=100, height=100, classes=None, margin=1.0):
    """Run rows (frame, label, a, b, c, d as text) through the annotation transforms; frame -> result row."""
    schema = ", ".join(f"{c} string" for c in COLUMNS)
    df = spark.createDataFrame(rows, schema).withColumn(SOURCE_FILE, F.lit("inline"))
    ann = standardize_annotations(df, "frame", "label", ["a", "b", "c", "d"])
    ann = map_classes(ann, classes or {"car": 0, "truck": 1})
    ann = ann.withColumn("width", F.lit(width)).withColumn("height", F.lit(height)) \
        .withColumn("frame_reason", F.lit(None).cast("string"))
    out = label_line(assign_reason(to_yolo_boxes(ann, box_format, margin)))
    return {r["frame_id"]: r for r in out.collect()}


def test_fixed6_writes_what_printf_writes(spark):
    import random

    rng = random.Random(7)
    values = [0.0, 1.0, 0.5, 1e-06, 0.999999, 0.0000005, 0.1234565, 0.000001, 0.100000]
    values += [rng.random() for _ in range(3000)] + [rng.randrange(0, 1_000_001) / 1e6 for _ in range(3000)]
    df = spark.createDataFrame([(v,) for v in values], "v double").select(F.round("v", 6).alias("v"))
    rows = df.select("v", fixed6(F.col("v")).alias("ours"), F.format_string("%.6f", "v").alias("printf")).collect()
    assert len(rows) == len(values)
    bad = [(r["v"], r["ours"], r["printf"]) for r in rows if r["ours"] != r["printf"] or r["ours"] != f"{r['v']:.6f}"]
    assert not bad, bad[:5]


def test_box_formats_give_the_same_yolo_box(spark):
    expected = "0 0.300000 0.400000 0.400000 0.400000"
    cases = {"xyxy_pixel": ("10", "20", "50", "60"), "xywh_pixel": ("10", "20", "40", "40"),
             "cxcywh_normalized": ("0.3", "0.4", "0.4", "0.4")}
    for box_format, coords in cases.items():
        (row,) = _boxes(spark, [("f", "car", *coords)], box_format).values()
        assert row["reason"] is None, box_format
        assert row["line"] == expected, box_format


def test_swapped_corners_clip_and_border(spark):
    rows = _boxes(spark, [
        ("swapped", "car", "50", "60", "10", "20"),
        ("clipped", "truck", "-10", "20", "50", "160"),
        ("border", "car", "0", "0", "100", "100"),
        ("spaces", "car", " 10", "20 ", "50", "60"),
    ])
    assert rows["swapped"]["line"] == "0 0.300000 0.400000 0.400000 0.400000"
    assert rows["clipped"]["line"] == "1 0.250000 0.600000 0.500000 0.800000"
    assert rows["border"]["line"] == "0 0.500000 0.500000 1.000000 1.000000"
    assert rows["spaces"]["line"] == "0 0.300000 0.400000 0.400000 0.400000"
    assert all(r["reason"] is None for r in rows.values())


def test_six_decimals_and_pixel_sizes(spark):
    (row,) = _boxes(spark, [("f", "car", "1", "1", "2", "2")], width=480, height=300).values()
    # (1+2)/2/480 = 0.003125, 1/480 = 0.00208333.., 1.5/300 = 0.005, 1/300 = 0.0033333..
    assert row["line"] == "0 0.003125 0.005000 0.002083 0.003333"


ROW_CASES = [
    (("unicorn", "10", "10", "20", "20"), R.UNKNOWN_CLASS),
    ((None, "10", "10", "20", "20"), R.UNKNOWN_CLASS),
    (("car", None, "10", "20", "20"), R.NULL_COORDINATE),
    (("car", "10", "abc", "20", "20"), R.NON_NUMERIC_COORDINATE),
    (("car", "10", "10", "NaN", "20"), R.NON_NUMERIC_COORDINATE),
    (("car", "10", "10", "20", "Infinity"), R.NON_NUMERIC_COORDINATE),
    (("car", "110", "10", "150", "20"), R.BOX_OUTSIDE_IMAGE),
    (("car", "-50", "10", "0", "20"), R.BOX_OUTSIDE_IMAGE),
    (("car", "10", "10", "1e30", "20"), R.BOX_OUTSIDE_IMAGE),      # one absurd corner: not a giant box
    (("car", "-1e30", "-1e30", "1e30", "1e30"), R.BOX_OUTSIDE_IMAGE),
    (("car", "-101", "10", "50", "50"), R.BOX_OUTSIDE_IMAGE),      # just beyond the margin of one image
    (("car", "10", "10", "10", "50"), R.ZERO_AREA),
    (("car", "10", "10", "50", "10.00001"), R.ZERO_AREA),
    (("truck", "10", "10", "50", "50"), None),
]


def test_row_reason_codes(spark):
    rows = _boxes(spark, [(f"case{i}", *row) for i, (row, _) in enumerate(ROW_CASES)])
    assert [rows[f"case{i}"]["reason"] for i in range(len(ROW_CASES))] == [reason for _, reason in ROW_CASES]


def test_clipped_boxes_are_flagged_and_the_margin_is_a_setting(spark):
    rows = _boxes(spark, [("inside", "car", "10", "10", "50", "50"), ("edge", "car", "-100", "10", "50", "200"),
                          ("far", "car", "-150", "10", "50", "50")])
    assert (rows["inside"]["clipped"], rows["inside"]["reason"]) == (False, None)
    assert (rows["edge"]["clipped"], rows["edge"]["reason"]) == (True, None)   # one image size out: clipped
    assert rows["edge"]["line"] == "0 0.250000 0.550000 0.500000 0.900000"
    assert rows["far"]["reason"] == R.BOX_OUTSIDE_IMAGE
    wide = _boxes(spark, [("far", "car", "-150", "10", "50", "50")], margin=2.0)
    assert (wide["far"]["reason"], wide["far"]["clipped"]) == (None, True)


def test_integral_float_class_values_match_whole_numbers(spark):
    values = {"a": "1.0", "b": "2", "c": "2.00", "d": "2.5", "e": "-0.0", "f": "1e0", "g": " 1.0 "}
    rows = _boxes(spark, [(f, v, "10", "10", "50", "50") for f, v in values.items()], classes={"1": 0, "2.0": 1})
    assert {f: r["cls"] for f, r in rows.items()} == {"a": 0, "b": 1, "c": 1, "d": None, "e": None, "f": None,
                                                      "g": 0}
    assert rows["a"]["class_raw"] == "1.0"  # the quarantine and stats keep the value as written


def test_a_row_the_reader_could_not_parse_is_malformed_first(spark):
    schema = ", ".join(f"{c} string" for c in COLUMNS) + ", _corrupt_record string"
    df = spark.createDataFrame([("f", "car", "1", "1", "5", None, "f,car,1,1,5"),
                                ("g", "car", "1", "1", "5", "5", None)], schema).withColumn(SOURCE_FILE, F.lit("x"))
    ann = map_classes(standardize_annotations(df, "frame", "label", ["a", "b", "c", "d"]), {"car": 0})
    ann = ann.select("*", F.lit(10).alias("width"), F.lit(10).alias("height"),
                     F.lit(R.IMAGE_MISSING).alias("frame_reason"))
    got = {r["frame_id"]: r for r in assign_reason(to_yolo_boxes(ann, "xyxy_pixel")).collect()}
    assert got["f"]["reason"] == R.MALFORMED_ROW and got["g"]["reason"] == R.IMAGE_MISSING
    assert got["f"]["source_row"]["_corrupt_record"] == "f,car,1,1,5"


def test_frame_reason_wins_and_source_row_is_kept(spark):
    df = spark.createDataFrame([("f", "unicorn", "1", "1", "5", "5")], COLUMNS).withColumn(SOURCE_FILE, F.lit("x"))
    ann = map_classes(standardize_annotations(df, "frame", "label", ["a", "b", "c", "d"]), {"car": 0})
    ann = ann.select("*", F.lit(10).alias("width"), F.lit(10).alias("height"),
                     F.lit(R.IMAGE_MISSING).alias("frame_reason"))
    (row,) = assign_reason(to_yolo_boxes(ann, "xyxy_pixel")).collect()
    assert row["reason"] == R.IMAGE_MISSING
    assert row["source_row"]["label"] == "unicorn"


def test_missing_annotation_column_names_the_fix(spark):
    df = spark.createDataFrame([("f", "car", "1", "1", "5", "5")], COLUMNS)
    with pytest.raises(InputError, match="annotation column\\(s\\) xmin not found; the table has: frame, label, a"):
        standardize_annotations(df, "frame", "label", ["xmin", "b", "c", "d"])


FRAME_CASES = {
    "ok.jpg": None,
    "ok2": None,
    "../x": R.UNSAFE_FRAME_ID,
    "/abs": R.UNSAFE_FRAME_ID,
    "a/b": R.UNSAFE_FRAME_ID,
    "a\\b": R.UNSAFE_FRAME_ID,
    "nul\x00": R.UNSAFE_FRAME_ID,
    "..": R.UNSAFE_FRAME_ID,
    ".hidden": R.UNSAFE_FRAME_ID,
    " pad": R.UNSAFE_FRAME_ID,
    "x" * 201: R.UNSAFE_FRAME_ID,
    "dup.jpg": R.AMBIGUOUS_FRAME_ID,   # same key as dup.png
    "dup.png": R.AMBIGUOUS_FRAME_ID,
    "nosize": R.INVALID_IMAGE_SIZE,
    "gif": R.UNSUPPORTED_IMAGE_FORMAT,
}


def test_frame_reason_codes(spark):
    rows = []
    for frame in FRAME_CASES:
        size = (None, 10) if frame == "nosize" else (640, 480)
        image = "/img/x.gif" if frame == "gif" else f"/img/{frame}.jpg"
        rows.append((frame, image, *size, None))
    frames = spark.createDataFrame(rows, "frame_id string, image_uri string, width int, height int, hint string")
    got = {r["frame_id"]: r for r in check_frames(frames).collect()}
    assert {f: r["frame_reason"] for f, r in got.items()} == FRAME_CASES
    assert got["ok.jpg"]["key"] == "ok" and got["ok.jpg"]["ext"] == "jpg"
    assert got["ok2"]["key"] == "ok2"


def test_hash_split_is_per_group_stable_and_follows_ratios(spark):
    rows = [(f"{v}_{i}", f"video{v}") for v in range(400) for i in range(3)]
    frames = spark.createDataFrame(rows, "frame_id string, hint string")
    ratios = {"train": 0.7, "val": 0.2, "test": 0.1}
    first = {r["frame_id"]: r["split"] for r in assign_split_by_hash(frames, ratios, seed=3).collect()}
    for v in range(400):  # a video never straddles splits
        assert len({first[f"{v}_{i}"] for i in range(3)}) == 1
    share = {s: sum(1 for x in first.values() if x == s) / len(first) for s in ratios}
    assert all(abs(share[s] - ratios[s]) < 0.06 for s in ratios), share
    # Adding videos later moves no existing frame.
    more = frames.union(spark.createDataFrame([(f"new_{i}", f"new{i}") for i in range(50)], frames.schema))
    second = {r["frame_id"]: r["split"] for r in assign_split_by_hash(more, ratios, seed=3).collect()}
    assert all(second[f] == s for f, s in first.items())
    other_seed = {r["frame_id"]: r["split"] for r in assign_split_by_hash(frames, ratios, seed=4).collect()}
    assert other_seed != first


def test_split_from_values(spark):
    frames = spark.createDataFrame([
        ("a", ["training"]), ("b", ["val"]), ("c", ["holdout"]), ("d", ["training", "val"]), ("e", None),
    ], "frame_id string, hints array<string>").withColumn("frame_reason", F.lit(None).cast("string"))
    got = {r["frame_id"]: (r["split"], r["frame_reason"])
           for r in assign_split_from_values(frames, {"training": "train"}).collect()}
    assert got == {"a": ("train", None), "b": ("val", None), "c": (None, R.UNKNOWN_SPLIT),
                   "d": (None, R.CONFLICTING_SPLIT), "e": (None, R.UNKNOWN_SPLIT)}


def test_shards_never_exceed_the_limit(spark):
    frames = spark.createDataFrame([(f"k{i:04d}", "train" if i % 4 else "val") for i in range(1000)],
                                   "key string, split string")
    counts = {"train": 750, "val": 250}
    sharded = assign_shards(frames, shard_buckets(counts, 40), 40)
    sizes = {(r["split"], r["shard"]): r["count"] for r in sharded.groupBy("split", "shard").count().collect()}
    assert max(sizes.values()) <= 40
    assert sum(sizes.values()) == 1000
    again = {r["key"]: r["shard"] for r in assign_shards(frames, shard_buckets(counts, 40), 40).collect()}
    assert again == {r["key"]: r["shard"] for r in sharded.collect()}
