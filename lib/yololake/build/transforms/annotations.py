"""Annotation rows -> validated, normalised YOLO boxes. Pure DataFrame -> DataFrame, Spark expressions only."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from yololake.config import INTEGRAL_PATTERN, integral_text
from yololake.dataset import reasons as R
from yololake.errors import InputError
from yololake.input_files import CORRUPT_RECORD
from yololake.tables import SOURCE_FILE

COORDS = ("b0", "b1", "b2", "b3")
IMPORT_REASON = "_import_reason"
DECIMALS = 6


def standardize_annotations(df: DataFrame, frame_column: str, class_column: str,
                            box_columns: Sequence[str], extra_columns: Sequence[str] = ()) -> DataFrame:
    """Select the standard annotation schema; keep the original row as JSON for the quarantine.

    Coordinates are parsed with try_cast so "abc" becomes a reason code, not a crash; NaN and
    infinities count as non-numeric. `malformed`: the reader could not parse the row (its raw line is in
    `_corrupt_record`, which the original row keeps).
    """
    missing = [c for c in (frame_column, class_column, *box_columns, *extra_columns) if c not in df.columns]
    if missing:
        raise InputError(f"annotation column(s) {', '.join(missing)} not found; the table has: "
                       f"{', '.join(c for c in df.columns if c != SOURCE_FILE)}. Fix the config's column names")
    original = [F.col(f"`{c}`") for c in df.columns if c != SOURCE_FILE]
    coords = []
    for name, source in zip(COORDS, box_columns):
        raw = F.col(f"`{source}`")
        value = raw.cast("string").try_cast("double")
        finite = value.isNotNull() & ~F.isnan(value) & (F.abs(value) != float("inf"))
        coords += [F.when(finite, value).alias(name), raw.isNull().alias(f"{name}_null")]
    malformed = F.col(CORRUPT_RECORD).isNotNull() if CORRUPT_RECORD in df.columns else F.lit(False)
    # A labeling tool's export may give a row its own reason (yololake.importers: crowd_box, rotated_box, ...).
    imported = F.col(IMPORT_REASON) if IMPORT_REASON in df.columns else F.lit(None).cast("string")
    return df.select(
        F.col(f"`{frame_column}`").cast("string").alias("frame_id"),
        F.trim(F.col(f"`{class_column}`").cast("string")).alias("class_raw"),
        *coords,
        malformed.alias("malformed"),
        imported.alias("import_reason"),
        *[F.col(f"`{c}`").alias(f"_x_{c}") for c in extra_columns],
        F.col(SOURCE_FILE),
        F.struct(*original).alias("source_row"),  # turned into JSON only for quarantined rows
    )


def map_classes(df: DataFrame, source_to_id: Mapping[str, int]) -> DataFrame:
    """Add `cls`: the YOLO class id of `class_raw`, null when the value is not in the class map.

    An integral number written as a float matches the whole number ("2.0" is "2", as `integral_text` makes
    the config's keys)."""
    pairs = [item for source, cid in source_to_id.items() for item in (F.lit(integral_text(source)), F.lit(cid))]
    value = F.regexp_replace(F.col("class_raw"), INTEGRAL_PATTERN, "$1")
    return df.withColumn("cls", F.create_map(*pairs)[value])


def _corners(box_format: str, width: Column, height: Column) -> tuple[Column, Column, Column, Column]:
    """Box columns b0..b3 -> normalised corners (x1, y1, x2, y2), not yet ordered or clipped."""
    b0, b1, b2, b3 = (F.col(c) for c in COORDS)
    if box_format == "xyxy_pixel":
        return b0 / width, b1 / height, b2 / width, b3 / height
    if box_format == "xywh_pixel":
        return b0 / width, b1 / height, (b0 + b2) / width, (b1 + b3) / height
    if box_format == "cxcywh_normalized":
        return b0 - b2 / 2, b1 - b3 / 2, b0 + b2 / 2, b1 + b3 / 2
    raise ValueError(f"unknown box format {box_format!r}")


def to_yolo_boxes(df: DataFrame, box_format: str, margin: float = 1.0) -> DataFrame:
    """Add normalised, clipped YOLO columns cx, cy, w, h (rounded to 6 decimals), `clipped` and `box_reason`.

    Swapped corners are reordered (the seed's abs() does the same); boxes partly outside the image are
    clipped to it (`clipped`); boxes fully outside, or with a corner more than `margin` image sizes outside
    (an absurd value such as 1e30 is an error, not a box covering the image), or with no area left after
    clipping and rounding, get a reason. Needs columns b0..b3 (+ b*_null), width, height.
    """
    x1, y1, x2, y2 = _corners(box_format, F.col("width").cast("double"), F.col("height").cast("double"))
    lo_x, hi_x, lo_y, hi_y = F.least(x1, x2), F.greatest(x1, x2), F.least(y1, y2), F.greatest(y1, y2)
    far = (lo_x < -margin) | (lo_y < -margin) | (hi_x > 1 + margin) | (hi_y > 1 + margin)
    cx1, cx2 = F.greatest(lo_x, F.lit(0.0)), F.least(hi_x, F.lit(1.0))
    cy1, cy2 = F.greatest(lo_y, F.lit(0.0)), F.least(hi_y, F.lit(1.0))
    w, h = F.round(cx2 - cx1, DECIMALS), F.round(cy2 - cy1, DECIMALS)
    any_null = F.lit(False)
    any_bad = F.lit(False)
    for c in COORDS:
        any_null = any_null | F.col(f"{c}_null")
        any_bad = any_bad | F.col(c).isNull()
    reason = (F.when(any_null, F.lit(R.NULL_COORDINATE))
              .when(any_bad, F.lit(R.NON_NUMERIC_COORDINATE))
              .when((hi_x <= 0) | (lo_x >= 1) | (hi_y <= 0) | (lo_y >= 1) | far, F.lit(R.BOX_OUTSIDE_IMAGE))
              .when((w <= 0) | (h <= 0), F.lit(R.ZERO_AREA)))
    return df.select(
        "*",
        F.round((cx1 + cx2) / 2, DECIMALS).alias("cx"),
        F.round((cy1 + cy2) / 2, DECIMALS).alias("cy"),
        w.alias("w"),
        h.alias("h"),
        ((lo_x < 0) | (lo_y < 0) | (hi_x > 1) | (hi_y > 1)).alias("clipped"),
        reason.alias("box_reason"),
    )


def fixed6(value: Column) -> Column:
    """A value in [0, 1], already rounded to 6 decimals, as text with exactly 6 decimals ("0.250000").

    Same text as format_string("%.6f") (tested), without java.util.Formatter, which cost more than all the
    other per-box work together.
    """
    micro = F.round(value * 10 ** DECIMALS).cast("long")
    return F.concat((micro / 10 ** DECIMALS).cast("long").cast("string"), F.lit("."),
                    F.lpad((micro % 10 ** DECIMALS).cast("string"), DECIMALS, "0"))


def label_line(df: DataFrame) -> DataFrame:
    """Add `line`, the YOLO label row "<cls> <cx> <cy> <w> <h>" with 6 decimals, for valid boxes (null otherwise).

    Needs `reason` (assign_reason): a rejected box may lie outside [0, 1] and gets no line.
    """
    line = F.concat_ws(" ", F.col("cls").cast("string"), *(fixed6(F.col(c)) for c in ("cx", "cy", "w", "h")))
    return df.withColumn("line", F.when(F.col("reason").isNull(), line))


def assign_reason(df: DataFrame) -> DataFrame:
    """Combine the row's, the export's, the frame's, the class and the box reasons into one `reason` (first
    that applies), null when valid. A malformed row comes first: none of its fields can be trusted."""
    return df.withColumn(
        "reason",
        F.coalesce(
            F.when(F.col("malformed"), F.lit(R.MALFORMED_ROW)),
            F.col("import_reason"),
            F.col("frame_reason"),
            F.when(F.col("cls").isNull(), F.lit(R.UNKNOWN_CLASS)),
            F.col("box_reason"),
        ),
    )
