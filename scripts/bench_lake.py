"""A fast generator of big benchmark lakes (no images): vectorised numpy + pyarrow, seconds for 1M frames.

    LAKE/frames/manifest.parquet                  frame_id, image, width, height, video_id
    LAKE/annotations/drive=<d>/part-*.parquet     frame_id, label, xmin, ymin, xmax, ymax (pixels)

--layout udacity: the seed's own CSVs instead (see generate_udacity).

Same schema as yololake.samples.lake (so conf/demo.yaml reads it), but no JPEGs and no planted bad rows:
the build runs with images.mode none and images.check_exists false. About 6 boxes per frame, every
20th frame a background frame (no boxes). Deterministic for a given seed.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

LABELS = ("car", "truck", "pedestrian", "person", "bicyclist", "light")
SIZES = np.array([(1280, 720), (1920, 1080), (640, 480)])
FRAMES_PER_VIDEO = 500
DRIVES = 4
ROWS_PER_FILE = 1_000_000


def generate(root: str, frames: int, seed: int = 0) -> dict:
    """Write the lake under `root`; return {frames, rows}."""
    rng = np.random.default_rng(seed)
    idx = np.arange(frames)
    video = idx // FRAMES_PER_VIDEO
    video_ids = [f"v{v:05d}" for v in range(int(video.max()) + 1)] if frames else []
    frame_ids = np.array([f"{video_ids[v]}_{i % FRAMES_PER_VIDEO:05d}" for i, v in zip(idx.tolist(), video.tolist())],
                         dtype=object)
    size = SIZES[video % len(SIZES)]
    width, height = size[:, 0], size[:, 1]
    manifest = pa.table({
        "frame_id": pa.array(frame_ids, pa.string()),
        "image": pa.array([f"images/{f[:6]}/{f}.jpg" for f in frame_ids], pa.string()),
        "width": pa.array(width, pa.int32()),
        "height": pa.array(height, pa.int32()),
        "video_id": pa.array(np.array(video_ids, dtype=object)[video] if frames else [], pa.string()),
    })
    os.makedirs(os.path.join(root, "frames"), exist_ok=True)
    pq.write_table(manifest, os.path.join(root, "frames", "manifest.parquet"))

    boxes = rng.integers(3, 10, size=frames)           # 3..9, mean 6
    boxes[idx % 20 == 19] = 0                         # background frames
    owner = np.repeat(idx, boxes)
    w, h = width[owner], height[owner]
    bw, bh = rng.uniform(0.05, 0.3, owner.size) * w, rng.uniform(0.05, 0.3, owner.size) * h
    x, y = rng.uniform(0, 1, owner.size) * (w - bw), rng.uniform(0, 1, owner.size) * (h - bh)
    labels = np.array(LABELS, dtype=object)[rng.integers(0, len(LABELS), owner.size)]
    drive = video[owner] % DRIVES
    for d in range(DRIVES):
        rows = np.flatnonzero(drive == d)
        folder = os.path.join(root, "annotations", f"drive=day{d}")
        os.makedirs(folder, exist_ok=True)
        for part, start in enumerate(range(0, max(rows.size, 1), ROWS_PER_FILE)):
            sel = rows[start:start + ROWS_PER_FILE]
            pq.write_table(pa.table({
                "frame_id": pa.array(frame_ids[owner[sel]], pa.string()),
                "label": pa.array(labels[sel], pa.string()),
                "xmin": np.round(x[sel], 1), "ymin": np.round(y[sel], 1),
                "xmax": np.round(x[sel] + bw[sel], 1), "ymax": np.round(y[sel] + bh[sel], 1),
            }), os.path.join(folder, f"part-{part:04d}.parquet"))
    return {"frames": frames, "rows": int(owner.size)}


UDACITY_SIZE = (480, 300)
UDACITY_FILES = {"labels_train.csv": 0.8, "labels_val.csv": 0.2}


def generate_udacity(root: str, frames: int, seed: int = 0) -> dict:
    """The seed's own layout at any size: labels_train.csv and labels_val.csv (80/20 of the frames), columns
    frame,xmin,xmax,ymin,ymax,class_id (integer pixel corners, class_id 1-5, frame = "<id>.jpg"), every image
    480x300 (conf/udacity.yaml asserts it). No images and no background frames: Udacity lists boxes only."""
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    w, h = UDACITY_SIZE
    boxes = rng.integers(3, 10, size=frames)
    owner = np.repeat(np.arange(frames), boxes)
    bw, bh = (rng.uniform(0.05, 0.3, owner.size) * w).astype(int) + 1, (rng.uniform(0.05, 0.3, owner.size) * h).astype(int) + 1
    x, y = (rng.uniform(0, 1, owner.size) * (w - bw)).astype(int), (rng.uniform(0, 1, owner.size) * (h - bh)).astype(int)
    names = np.array([f"{1478019952686311006 + 1000 * i}.jpg" for i in range(frames)], dtype=object)
    os.makedirs(root, exist_ok=True)
    cut = int(frames * UDACITY_FILES["labels_train.csv"])
    for name, sel in (("labels_train.csv", owner < cut), ("labels_val.csv", owner >= cut)):
        table = pa.table({
            "frame": pa.array(names[owner[sel]], pa.string()), "xmin": x[sel], "xmax": x[sel] + bw[sel],
            "ymin": y[sel], "ymax": y[sel] + bh[sel], "class_id": rng.integers(1, 6, int(sel.sum())),
        })
        with open(os.path.join(root, name), "wb") as f:  # an unquoted header, as Kaggle's files have
            f.write((",".join(table.column_names) + "\n").encode())
            pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return {"frames": frames, "rows": int(owner.size)}


def link_images(root: str) -> int:
    """Give every manifest frame an image: one real JPEG per frame size, hard-linked under each frame's path.
    The job's image check then opens and reads the header of every file, as on a real lake, but from the
    page cache (one inode per size): a warm-cache measure of the check's own cost, without GBs of JPEGs."""
    from PIL import Image

    manifest = pq.read_table(os.path.join(root, "frames", "manifest.parquet"), columns=["image", "width", "height"])
    sources = {}
    for (w, h) in {tuple(map(int, s)) for s in SIZES}:
        sources[(w, h)] = os.path.join(root, f"source_{w}x{h}.jpg")
        Image.new("RGB", (w, h), (90, 120, 150)).save(sources[(w, h)], quality=85)
    made = set()
    for image, w, h in zip(*(manifest.column(c).to_pylist() for c in ("image", "width", "height"))):
        folder = os.path.dirname(os.path.join(root, image))
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        os.link(sources[(w, h)], os.path.join(root, image))
    return manifest.num_rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--frames", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layout", choices=("parquet", "udacity"), default="parquet")
    p.add_argument("--link-images", action="store_true", help="parquet layout: an image for every frame "
                                                                "(hard links to one JPEG per size; see link_images)")
    args = p.parse_args()
    info = (generate if args.layout == "parquet" else generate_udacity)(args.out, args.frames, args.seed)
    if args.link_images:
        print(f"linked {link_images(args.out)} images")
    print(f"bench lake: {args.out} ({info['frames']} frames, {info['rows']} annotation rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
