"""Generate a small, realistic data lake for the demo and the tests.

    LAKE/images/<video>/<frame>.jpg          real JPEGs, a few sizes
    LAKE/frames/manifest.parquet             frame_id, image (relative to LAKE), width, height, video_id
    LAKE/annotations/drive=<d>/part-*.parquet  one row per box: frame_id, label, xmin, ymin, xmax, ymax
    LAKE/_planted.json                       the bad rows planted, by reason code (what the job must quarantine)

Deterministic for a given seed.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
from collections import Counter
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from yololake.dataset import reasons as R

LABELS = ("car", "truck", "pedestrian", "person", "bicyclist", "light")  # "person" is mapped to pedestrian
SIZES = ((96, 64), (128, 96), (160, 120))
ANNOTATION_SCHEMA = pa.schema([("frame_id", pa.string()), ("label", pa.string()), ("xmin", pa.float64()),
                               ("ymin", pa.float64()), ("xmax", pa.float64()), ("ymax", pa.float64())])


def _box(rng: random.Random, w: int, h: int) -> list[float]:
    bw, bh = rng.uniform(0.1, 0.4) * w, rng.uniform(0.1, 0.4) * h
    x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
    return [round(x, 1), round(y, 1), round(x + bw, 1), round(y + bh, 1)]


def _jpeg(path: str, w: int, h: int, boxes: list[list[float]], rng: random.Random) -> None:
    img = Image.new("RGB", (w, h), tuple(rng.randrange(40, 90) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for x1, y1, x2, y2 in boxes:
        draw.rectangle([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)],
                       fill=tuple(rng.randrange(120, 255) for _ in range(3)))
    img.save(path, "JPEG", quality=85)


def _plant_bad_rows(root: str, rows: dict[str, list], manifest: list[dict]) -> tuple[Counter, int]:
    """Add one bad row per reason code (and a missing image, exact duplicates); return what was planted."""
    planted: Counter = Counter()
    duplicates = 0
    good = rows["day1"]
    frame0, w0 = manifest[0]["frame_id"], manifest[0]["width"]

    def plant(reason: str, row: list) -> None:
        rows["day2"].append(row)
        planted[reason] += 1

    plant(R.UNKNOWN_CLASS, [frame0, "unicorn", 1, 1, 20, 20])
    plant(R.UNKNOWN_CLASS, [frame0, None, 1, 1, 20, 20])
    plant(R.NULL_COORDINATE, [frame0, "car", None, 1, 20, 20])
    plant(R.NON_NUMERIC_COORDINATE, [frame0, "car", 1, math.nan, 20, 20])
    plant(R.NON_NUMERIC_COORDINATE, [frame0, "car", 1, 2, math.inf, 20])
    plant(R.BOX_OUTSIDE_IMAGE, [frame0, "car", w0 + 5, 1, w0 + 30, 20])
    plant(R.BOX_OUTSIDE_IMAGE, [frame0, "truck", 1, -40, 20, -2])
    plant(R.ZERO_AREA, [frame0, "car", 10, 5, 10, 20])
    plant(R.ZERO_AREA, [frame0, "car", 10, 5, 10.0000001, 20])  # no width left at 6 decimals
    plant(R.FRAME_NOT_IN_MANIFEST, ["ghost_0001", "car", 1, 1, 20, 20])
    plant(R.FRAME_NOT_IN_MANIFEST, ["ghost_0002", "light", 1, 1, 20, 20])
    for unsafe in ("../../escape", "/tmp/yololake_abs", "a/b", "nul\x00byte", "..", "back\\slash", " padded"):
        plant(R.UNSAFE_FRAME_ID, [unsafe, "car", 1, 1, 20, 20])
    # A manifest frame whose image is gone: its boxes are quarantined.
    missing = manifest[3]
    os.remove(os.path.join(root, missing["image"]))
    n_missing = sum(1 for r in rows["day1"] + rows["day2"] if r[0] == missing["frame_id"])
    planted[R.IMAGE_MISSING] += n_missing
    # An unsafe id in the manifest too, pointing at a real image.
    manifest.append({**manifest[1], "frame_id": "../../outside_bg"})
    plant(R.UNSAFE_FRAME_ID, ["../../outside_bg", "car", 1, 1, 20, 20])
    for r in good[:3]:   # exact duplicates of valid rows: dropped and counted
        if r[0] != missing["frame_id"]:
            rows["day1"].append(list(r))
            duplicates += 1

    return planted, duplicates


def _write_tables(root: str, manifest: list[dict], rows: dict[str, list]) -> None:
    """The frame manifest, and the annotations as two parquet parts per hive partition (drive=...)."""
    os.makedirs(os.path.join(root, "frames"), exist_ok=True)
    pq.write_table(pa.Table.from_pylist(manifest), os.path.join(root, "frames", "manifest.parquet"))
    for drive, drive_rows in rows.items():
        folder = os.path.join(root, "annotations", f"drive={drive}")
        os.makedirs(folder, exist_ok=True)
        half = len(drive_rows) // 2
        for part, chunk in enumerate((drive_rows[:half], drive_rows[half:])):
            table = pa.Table.from_pylist([dict(zip(ANNOTATION_SCHEMA.names, r)) for r in chunk],
                                         schema=ANNOTATION_SCHEMA)
            pq.write_table(table, os.path.join(folder, f"part-{part}.parquet"))


def generate(root: str, videos: int = 12, frames_per_video: int = 10, seed: int = 7,
             plant_bad_rows: bool = True) -> dict:
    """Write the lake under `root`; return what was planted (also saved as `_planted.json`)."""
    rng = random.Random(seed)
    manifest, rows = [], {"day1": [], "day2": []}
    for v in range(videos):
        video, (w, h) = f"v{v:02d}", SIZES[v % len(SIZES)]
        os.makedirs(os.path.join(root, "images", video), exist_ok=True)
        drive = "day1" if v % 2 == 0 else "day2"
        for i in range(frames_per_video):
            frame = f"{video}_{i:04d}"
            boxes = [] if i % 5 == 4 else [_box(rng, w, h) for _ in range(rng.randint(1, 4))]  # every 5th: background
            image = f"images/{video}/{frame}.jpg"
            _jpeg(os.path.join(root, image), w, h, boxes, rng)
            manifest.append({"frame_id": frame, "image": image, "width": w, "height": h, "video_id": video})
            for b in boxes:
                if rng.random() < 0.15:  # swapped corners, as labeling tools export them sometimes
                    b = [b[2], b[3], b[0], b[1]]
                if rng.random() < 0.1:   # partly outside the image: clipped, not rejected
                    b = [b[0] - 0.5 * (b[2] - b[0]), b[1], b[2], b[3]]
                rows[drive].append([frame, rng.choice(LABELS), *b])

    planted, duplicates = _plant_bad_rows(root, rows, manifest) if plant_bad_rows else (Counter(), 0)
    _write_tables(root, manifest, rows)
    total = sum(len(r) for r in rows.values())
    info = {"rows": total, "frames": len(manifest), "quarantined_by_reason": dict(sorted(planted.items())),
            "duplicates": duplicates, "videos": videos}
    with open(os.path.join(root, "_planted.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2, sort_keys=True)
    return info


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sample_lake", description="generate a small sample data lake")
    p.add_argument("--out", required=True, help="folder to create the lake in")
    p.add_argument("--videos", type=int, default=12)
    p.add_argument("--frames-per-video", type=int, default=10)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--clean", action="store_true", help="no planted bad rows")
    args = p.parse_args(argv)
    info = generate(args.out, args.videos, args.frames_per_video, args.seed, plant_bad_rows=not args.clean)
    print(f"sample lake: {args.out} ({info['frames']} frames, {info['rows']} annotation rows, "
          f"{sum(info['quarantined_by_reason'].values())} planted bad rows, {info['duplicates']} duplicates)")
    return 0
