"""Generate short test/demo videos with PyAV, and box annotations for the frames sampled from them.

Each frame carries its frame number drawn as 16 black/white blocks in the top third (survives
compression and resizing, read back with `read_counter`) and one moving rectangle (a "car") whose
box is a pure function of the frame number, so generated annotations are correct by construction.

    python -m yololake.samples.videos videos --out DIR [--bad]
    python -m yololake.samples.videos boxes --manifest OUT/manifest --out ANNOTATIONS.parquet
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from fractions import Fraction

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

BITS, COLS = 16, 8   # counter: 2 rows of 8 blocks


def draw_frame(index: int, width: int, height: int, texture: np.ndarray | None = None) -> np.ndarray:
    """Counter blocks and the car over flat gray, or over `texture` (HxWx3) panned one pixel per frame."""
    img = np.full((height, width, 3), 96, dtype=np.uint8) if texture is None else np.roll(texture, index, axis=1)
    bh, bw = height // 6, width // COLS
    for bit in range(BITS):
        r, c = divmod(bit, COLS)
        img[r * bh:(r + 1) * bh, c * bw:(c + 1) * bw] = 255 if (index >> bit) & 1 else 0
    x0, y0, x1, y1 = (round(v) for v in car_box(index, width, height))
    img[y0:y1, x0:x1] = (220, 40, 40)
    return img


def read_counter(rgb: np.ndarray) -> int:
    """The frame number drawn by draw_frame, from an RGB array of any size (centre of each block)."""
    height, width = rgb.shape[:2]
    gray = rgb.astype(np.float32).mean(axis=2)
    value = 0
    for bit in range(BITS):
        r, c = divmod(bit, COLS)
        cy, cx = (r + 0.5) * height / 6, (c + 0.5) * width / COLS
        dy, dx = max(1, height // 30), max(1, width // 40)
        patch = gray[int(cy) - dy:int(cy) + dy + 1, int(cx) - dx:int(cx) + dx + 1]
        value |= int(patch.mean() > 127) << bit
    return value


def car_box(index: int, width: float, height: float) -> tuple[float, float, float, float]:
    """xmin, ymin, xmax, ymax in pixels of a width x height image: a quarter-size box sliding right."""
    bw, bh = width / 4, height / 4
    x = (index * width / 64) % (width - bw)
    y = height / 2
    return x, y, x + bw, y + bh


def write_video(path: str, n_frames: int, rate: Fraction | int, width: int = 64, height: int = 48,
                codec: str = "libx264", gop: int = 12, options: dict | None = None,
                texture: np.ndarray | None = None) -> None:
    """An mp4 (or any container by extension) of n_frames numbered frames at `rate` fps."""
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=Fraction(rate))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        if codec == "libx264":
            stream.options = {"preset": "veryfast", "crf": "18", **(options or {})}
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(draw_frame(i, width, height, texture), format="rgb24")
            frame.pts = i
            frame.time_base = 1 / Fraction(rate)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def write_bad_files(folder: str, good_video: str) -> dict[str, str]:
    """A text file and a truncated copy of `good_video` (its mp4 index is lost): name -> expected reason."""
    with open(os.path.join(folder, "notes.txt"), "w", encoding="utf-8") as f:
        f.write("not a video\n")
    with open(good_video, "rb") as f:
        data = f.read()
    with open(os.path.join(folder, "broken.mp4"), "wb") as f:
        f.write(data[: len(data) // 2])
    return {"notes": "unreadable_video", "broken": "unreadable_video"}


def write_truncated_faststart(source: str, target: str) -> None:
    """`source` remuxed with its index up front (movflags faststart), then cut in half: it opens, announces
    all its frames, and its data ends half-way (a truncated_video, its first frames still usable)."""
    tmp = target + ".full.mp4"
    with av.open(source) as src, av.open(tmp, "w", options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    with open(tmp, "rb") as f:
        data = f.read()
    os.remove(tmp)
    with open(target, "wb") as f:
        f.write(data[: len(data) // 2])


DEMO_VIDEOS = (("cam_a", 30, 6.0), ("cam_b", Fraction(30000, 1001), 5.0), ("cam_c", 25, 4.0),
               ("cam_d", 30, 5.0), ("cam_e", 24, 4.0))


def generate_videos(folder: str, width: int = 160, height: int = 120, bad: bool = True) -> dict:
    os.makedirs(folder, exist_ok=True)
    info = {}
    for name, rate, seconds in DEMO_VIDEOS:
        n = round(seconds * rate)
        write_video(os.path.join(folder, f"{name}.mp4"), n, rate, width, height)
        info[name] = {"frames": n, "rate": str(rate)}
    if bad:
        info["_bad"] = write_bad_files(folder, os.path.join(folder, f"{DEMO_VIDEOS[0][0]}.mp4"))
    return info


def boxes_for_manifest(manifest: str, out: str) -> int:
    """One "car" box per manifest frame (pixels of the written JPEG), from its frame_index; returns the count."""
    table = pq.read_table(manifest, columns=["frame_id", "frame_index", "width", "height"]).to_pylist()
    rows = []
    for r in table:
        xmin, ymin, xmax, ymax = car_box(r["frame_index"], r["width"], r["height"])
        rows.append({"frame_id": r["frame_id"], "label": "car", "xmin": xmin, "ymin": ymin,
                     "xmax": xmax, "ymax": ymax})
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), out)
    return len(rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sample_videos", description="generate demo videos / boxes for their frames")
    sub = p.add_subparsers(dest="what", required=True)
    v = sub.add_parser("videos", help="write a few short numbered videos (+ a text file and a truncated mp4)")
    v.add_argument("--out", required=True)
    v.add_argument("--no-bad", action="store_true", help="only good videos")
    b = sub.add_parser("boxes", help="write one car box per frame of an extracted frame manifest")
    b.add_argument("--manifest", required=True)
    b.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.what == "videos":
        info = generate_videos(args.out, bad=not args.no_bad)
        print(f"sample videos: {args.out} ({len(DEMO_VIDEOS)} videos"
              f"{', 2 bad files' if '_bad' in info else ''})")
    else:
        print(f"boxes: {args.out} ({boxes_for_manifest(args.manifest, args.out)} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
