"""A video sampled by extract-frames, labeled in CVAT as a video ("CVAT for video 1.1": tracks), comes back
as a dataset: track boxes join the manifest by video and frame number, scaled to the extracted frame size."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from exports import build, cvat_meta, read_labels, same_labels
from PIL import Image
from yololake.dataset.versions import current_folder
from yololake.samples.videos import car_box, read_counter, write_video
from yololake.video.config import parse_extract_config
from yololake.video.main import run as extract

pytestmark = pytest.mark.slow
W, H, N = 64, 48, 30
PERSON = {10: (5, 5, 20, 40), 11: (6, 5, 21, 40), 15: (7, 5, 22, 40)}  # frame 15: marked outside the view


def track(track_id: int, label: str, boxes: dict[int, tuple], outside: set[int] = frozenset()) -> str:
    rows = "".join(f'<box frame="{f}" keyframe="1" outside="{int(f in outside)}" occluded="0" xtl="{x1:.2f}" '
                   f'ytl="{y1:.2f}" xbr="{x2:.2f}" ybr="{y2:.2f}" z_order="0"></box>'
                   for f, (x1, y1, x2, y2) in sorted(boxes.items()))
    return f'<track id="{track_id}" label="{label}" source="manual">{rows}</track>'


def write_cvat_video(path: Path) -> None:
    meta = cvat_meta(["car", "person"], extra="<source>cam.mp4</source>"
                     f"<original_size><width>{W}</width><height>{H}</height></original_size>")
    meta = meta.replace("<mode>annotation</mode>", "<mode>interpolation</mode>")
    cars = {i: tuple(round(v, 2) for v in car_box(i, W, H)) for i in range(N)}
    path.write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<annotations>{meta}{track(0, "car", cars, {N - 1})}'
                    f'{track(1, "person", PERSON, {15})}</annotations>')


def test_cvat_video_tracks_join_the_extract_frames_manifest(spark, tmp_path):
    (tmp_path / "videos").mkdir()
    write_video(str(tmp_path / "videos" / "cam.mp4"), N, 30, W, H)
    config = parse_extract_config({"sampling": {"every_n": 5, "fps": 0}, "image": {"max_side": 32}})
    extract(spark, config, str(tmp_path / "videos"), str(tmp_path / "frames"), False)
    manifest = pd.read_parquet(tmp_path / "frames" / "manifest")
    assert sorted(manifest.frame_index) == [0, 5, 10, 15, 20, 25] and set(manifest.width) == {32}
    write_cvat_video(tmp_path / "annotations.xml")
    summary = build(spark, "cvat", str(tmp_path / "annotations.xml"), None, tmp_path / "out",
                    frames=(str(tmp_path / "frames" / "manifest"),))
    version = current_folder(str(tmp_path / "out"))
    expected = {}
    for r in manifest.itertuples():  # the boxes as the export wrote them (2 decimals), normalised by the video size
        boxes = [(0, *(round(v, 2) for v in car_box(r.frame_index, W, H)))]
        boxes += [(1, *PERSON[10])] if r.frame_index == 10 else []
        expected[r.frame_id] = sorted((c, (x1 + x2) / 2 / W, (y1 + y2) / 2 / H, (x2 - x1) / W, (y2 - y1) / H)
                                      for c, x1, y1, x2, y2 in boxes)
    assert same_labels(read_labels(version), expected, tol=2e-6), (read_labels(version), expected)
    assert summary["rows_in"] == summary["boxes_written"] == len(manifest) + 1 and summary["quarantined"] == 0
    index = manifest.set_index("frame_id")
    for image in Path(version).glob("images/*/*/*.jpg"):  # each dataset image is the extracted frame itself
        pixels = np.asarray(Image.open(io.BytesIO(image.read_bytes())).convert("RGB"))
        assert read_counter(pixels) == index.loc[image.stem, "frame_index"]
