"""Pictures for the dataset report: boxes drawn on frames, and matplotlib (Agg) charts of small aggregates.

Everything here works on data already aggregated or sampled by Spark (bins, a few frames); nothing reads
the dataset. `draw_boxes` is a pure function so its pixels can be checked directly.
"""
from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display on a cluster node or in CI; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont, ImageOps  # noqa: E402

from yololake.storage import local_path  # noqa: E402

Box = tuple[int, float, float, float, float]  # class id, cx, cy, w, h (normalised, as in a YOLO label line)
_PALETTE = [tuple(int(255 * c) for c in rgb) for rgb in plt.get_cmap("tab10").colors]


def class_color(cls: int) -> tuple[int, int, int]:
    return _PALETTE[cls % len(_PALETTE)]


def box_pixels(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """Inclusive pixel corners (x1, y1, x2, y2) of a normalised box on a width x height image."""
    _, cx, cy, w, h = box
    x1 = min(max(round((cx - w / 2) * width), 0), width - 1)
    y1 = min(max(round((cy - h / 2) * height), 0), height - 1)
    x2 = min(max(round((cx + w / 2) * width) - 1, x1), width - 1)
    y2 = min(max(round((cy + h / 2) * height) - 1, y1), height - 1)
    return x1, y1, x2, y2


def draw_boxes(image: np.ndarray, boxes: Sequence[Box], names: Sequence[str] | None = None,
               line_width: int = 1) -> np.ndarray:
    """Return a copy of `image` (H x W x 3 uint8) with each box's outline and, given `names`, its class name.

    The outline covers exactly the box's edge pixels (growing inwards with `line_width`); the name tag
    sits just above the box's top-left corner (inside the box when there is no room above).
    """
    canvas = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    height, width = image.shape[:2]
    for box in boxes:
        x1, y1, x2, y2 = box_pixels(box, width, height)
        color = class_color(int(box[0]))
        draw.rectangle([x1, y1, x2, y2], outline=color, width=line_width)
        if names is not None:
            cls = int(box[0])
            text = names[cls] if 0 <= cls < len(names) else str(cls)
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            tw, th = right - left + 2, bottom - top + 2
            ty = y1 - th if y1 - th >= 0 else y1 + line_width
            draw.rectangle([x1, ty, x1 + tw - 1, ty + th - 1], fill=color)
            draw.text((x1 + 1 - left, ty + 1 - top), text, fill=(255, 255, 255), font=font)
    return np.asarray(canvas)


def parse_label_text(text: str) -> list[Box]:
    """The boxes of a YOLO label file's text (lines that are not five fields are skipped)."""
    boxes = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 5:
            boxes.append((int(parts[0]), *map(float, parts[1:])))
    return boxes


def load_frame_image(candidates: Sequence[str], width: int, height: int, max_width: int) -> np.ndarray:
    """The first readable local image of `candidates`, or a grey width x height canvas when there is none
    (images.mode none); scaled down to at most `max_width` pixels wide."""
    for path in candidates:
        local = local_path(path) if path else None
        if local and os.path.isfile(local):
            try:
                with open(local, "rb") as f:
                    return decode_frame_image(f.read(), width, height, max_width, strict=True)
            except OSError:
                continue
    return decode_frame_image(None, width, height, max_width)


def decode_frame_image(data: bytes | None, width: int, height: int, max_width: int,
                       strict: bool = False) -> np.ndarray:
    """An image's bytes decoded to RGB (a grey width x height canvas when there are none, or, unless
    `strict`, when they do not decode), scaled down to at most `max_width` pixels wide."""
    image = None
    if data is not None:
        try:
            with Image.open(io.BytesIO(data)) as img:
                image = ImageOps.exif_transpose(img).convert("RGB")  # as displayed: the labels' frame
        except OSError:
            if strict:
                raise
    if image is None:
        image = Image.new("RGB", (width, height), (128, 128, 128))
    scale = min(1.0, max_width / image.width)
    if scale < 1.0:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    return np.asarray(image)


def _save(fig: plt.Figure, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_class_histogram(counts: Mapping[str, Mapping[str, int]], names: Sequence[str], path: str) -> str:
    """Grouped bars: boxes per class, one colour per split. counts: split -> class name -> boxes."""
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(names)), 4))
    splits = list(counts)
    x = np.arange(len(names))
    bar = 0.8 / max(1, len(splits))
    for i, split in enumerate(splits):
        values = [counts[split].get(n, 0) for n in names]
        bars = ax.bar(x + i * bar - 0.4 + bar / 2, values, bar, label=split)
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("boxes")
    ax.set_title("boxes per class and split")
    if splits:
        ax.legend()
    return _save(fig, path)


def plot_label_heatmaps(centres: np.ndarray, sizes: np.ndarray, path: str) -> str:
    """What YOLOv5's labels.jpg shows: box centres (x, y) and sizes (w, h), as 2-D histograms + marginals."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, hist, (xl, yl), title in ((axes[0], centres, ("x", "y"), "box centres"),
                                      (axes[1], sizes, ("width", "height"), "box width x height")):
        im = ax.imshow(hist.T, origin="upper" if title == "box centres" else "lower", extent=(0, 1, 1, 0)
                       if title == "box centres" else (0, 1, 0, 1), cmap="viridis", aspect="auto")
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.set_title(title)
        fig.colorbar(im, ax=ax, label="boxes")
    edges = np.linspace(0, 1, sizes.shape[0] + 1)
    axes[2].stairs(sizes.sum(axis=1), edges, label="width")
    axes[2].stairs(sizes.sum(axis=0), edges, label="height")
    axes[2].set_xlabel("fraction of the image")
    axes[2].set_ylabel("boxes")
    axes[2].set_title("width and height")
    axes[2].legend()
    return _save(fig, path)


def plot_boxes_per_frame(counts: Mapping[str, Mapping[int, int]], cap: int, path: str) -> str:
    """Frames by number of boxes, per split; the last bin holds `cap` boxes or more."""
    fig, ax = plt.subplots(figsize=(8, 4))
    splits = list(counts)
    bar = 0.8 / max(1, len(splits))
    x = np.arange(cap + 1)
    for i, split in enumerate(splits):
        ax.bar(x + i * bar - 0.4 + bar / 2, [counts[split].get(n, 0) for n in x], bar, label=split)
    ax.set_xlabel(f"boxes in the frame ({cap} = {cap} or more; 0 = background)")
    ax.set_ylabel("frames")
    ax.set_title("boxes per frame")
    if splits:
        ax.legend()
    return _save(fig, path)


def plot_quarantine(reasons: Mapping[str, int], path: str) -> str:
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.4 * len(reasons) + 1)))
    if reasons:
        items = sorted(reasons.items(), key=lambda kv: kv[1])
        bars = ax.barh([k for k, _ in items], [v for _, v in items], color="tab:red")
        ax.bar_label(bars, fontsize=8)
        ax.set_xlabel("quarantined annotation rows")
    else:
        ax.text(0.5, 0.5, "no rows quarantined", ha="center", va="center")
        ax.set_axis_off()
    ax.set_title("quarantine by reason")
    return _save(fig, path)


def plot_mosaic(tiles: Sequence[tuple[np.ndarray, str]], title: str, path: str) -> str:
    """A grid of drawn frames with their keys as captions."""
    cols = max(1, math.ceil(math.sqrt(len(tiles))))
    rows = max(1, math.ceil(len(tiles) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (image, caption) in zip(axes.flat, tiles):
        ax.imshow(image)
        ax.set_title(caption, fontsize=8)
    if not tiles:
        axes[0, 0].text(0.5, 0.5, "no frames", ha="center", va="center")
    fig.suptitle(title)
    return _save(fig, path)
