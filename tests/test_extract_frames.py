"""extract-frames on real local Spark with videos generated here by PyAV (tiny: 64x48, a few seconds).

Every frame carries its number drawn as black/white blocks, so a test reads back which frame a JPEG holds.
"""
from __future__ import annotations

import io
import math
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from yololake.dataset import layout as L
from yololake.dataset.versions import current_folder
from yololake.errors import OutputExistsError
from yololake.samples.videos import car_box, read_counter, write_bad_files, write_truncated_faststart, write_video
from yololake.video import sampling as S
from yololake.video.config import parse_extract_config
from yololake.video.main import run

ROOT = Path(__file__).resolve().parents[1]
NTSC = Fraction(30000, 1001)
VIDEOS = {"v30": (90, Fraction(30), "libx264"), "ntsc": (75, NTSC, "mpeg4")}   # frames, rate, codec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    for name, (n, rate, codec) in VIDEOS.items():
        write_video(str(folder / f"{name}.mp4"), n, rate, codec=codec, gop=12)
    write_bad_files(str(folder), str(folder / "v30.mp4"))   # notes.txt, broken.mp4 (first half of v30)
    return folder


def decoded_pts(path: Path) -> list[int]:
    """Whole-video decode, no seeking: the reference the segmented job must reproduce."""
    with av.open(str(path)) as c:
        return sorted(f.pts for f in c.decode(video=0))


def manifest(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "manifest").sort_values(["video_id", "pts"]).reset_index(drop=True)


def counter(image_uri: str) -> int:
    with open(image_uri, "rb") as f:
        return read_counter(np.asarray(Image.open(io.BytesIO(f.read())).convert("RGB")))


def extract(spark, videos, out, overwrite=False, **config):
    return run(spark, parse_extract_config(config), str(videos), str(out), overwrite)


@pytest.fixture(scope="module")
def fps_run(spark, videos, tmp_path_factory):
    """2 fps, 0.5 s segments, JPEGs resized to 32 px: (out, summary)."""
    out = tmp_path_factory.mktemp("fps") / "out"
    summary = extract(spark, videos, out, sampling={"fps": 2}, segments={"seconds": 0.5}, image={"max_side": 32})
    return out, summary


def test_fps_run_frames_are_the_right_ones(fps_run):
    out, summary = fps_run
    m = manifest(out)
    for name, (n, rate, _) in VIDEOS.items():
        got = m[m.video_id == name]
        targets = [Fraction(k, 2) for k in range(math.ceil(Fraction(n) / rate * 2))]
        # the first frame at or after each k/2 s (ntsc: 2.5 s is past its last frame, 74 at 2.469 s)
        assert list(got.frame_index) == [math.ceil(t * rate) for t in targets if math.ceil(t * rate) < n]
        assert [counter(u) for u in got.image] == list(got.frame_index)        # the JPEG holds that frame
        assert set(got.width) == {32} and set(got.height) == {24}
        assert all(Path(u).is_file() and Path(u).parent == out / "frames" / name for u in got.image)
        assert list(got.frame_id) == [S.frame_id(name, p) for p in got.pts]
    assert summary["frames_written"] == len(m) == 6 + 5
    assert (out / L.SUCCESS).exists() and (out / "stats.json").exists()


def test_ntsc_timestamps_are_exact(fps_run):
    out, _ = fps_run
    got = manifest(out).query("video_id == 'ntsc'")
    assert set(got.time_base) == {"1/30000"}
    assert list(got.pts) == [i * 1001 for i in got.frame_index]
    # 500.5 ms -> 501, 1001 ms, 1501.5 -> 1502, 2002: from the exact fraction, not 1/29.97 in floats
    assert list(got.timestamp_ms) == [0, 501, 1001, 1502, 2002]


def test_bad_files_are_quarantined_and_good_videos_succeed(fps_run):
    out, summary = fps_run
    q = pd.read_parquet(out / "quarantine").sort_values("video_id")
    assert list(q.video_id) == ["broken", "notes"]
    assert set(q.reason) == {"unreadable_video"} and all(q.detail.str.len() > 0)
    assert summary["quarantine_by_reason"] == {"unreadable_video": 2}
    assert summary["videos_listed"] == 4 and summary["videos_with_frames"] == 2
    assert not (out / "frames" / "broken").exists()


def test_rerun_needs_overwrite(spark, fps_run, videos):
    out, _ = fps_run
    with pytest.raises(OutputExistsError, match="already holds a committed dataset"):
        extract(spark, videos, out)


def test_tiny_segments_equal_whole_video_decoding(spark, videos, tmp_path):
    """Every frame, 0.5 s segments (6 per video, seeking into B-frame GOPs): no frame dropped or doubled."""
    summary = extract(spark, videos, tmp_path / "out", sampling={"every_n": 1}, segments={"seconds": 0.5})
    m = manifest(tmp_path / "out")
    for name, (n, _, _) in VIDEOS.items():
        got = m[m.video_id == name]
        assert list(got.pts) == decoded_pts(videos / f"{name}.mp4")
        assert list(got.frame_index) == list(range(n))
        assert [counter(u) for u in got.image[::7]] == list(got.frame_index[::7])
    assert summary["segments"] == 6 + 6 and summary["frames_written"] == sum(n for n, _, _ in VIDEOS.values())


def test_video_table_every_n_max_frames_and_unsafe_ids(spark, videos, tmp_path):
    table = tmp_path / "videos.parquet"
    write_truncated_faststart(str(videos / "v30.mp4"), str(tmp_path / "cut.mp4"))  # opens; data ends half-way
    pd.DataFrame({"video_id": ["v30", "ntsc", "../evil", ".hidden", "a/b", "cut"],
                  "uri": [str(videos / "v30.mp4"), "ntsc.mp4", "v30.mp4", "v30.mp4", "v30.mp4", "cut.mp4"]}
                 ).to_parquet(table)
    # relative uris are taken relative to the table's folder: put a copy of ntsc there
    os.link(videos / "ntsc.mp4", tmp_path / "ntsc.mp4")
    os.link(videos / "v30.mp4", tmp_path / "v30.mp4")
    out = tmp_path / "out"
    summary = run(spark, parse_extract_config({"sampling": {"every_n": 10, "max_frames": 8}}), str(table), str(out))
    m = manifest(out)
    # ntsc: 75 frames / 10 -> 8 frames, under the cap; v30: 90 / 10 -> 9 > 8: evenly spaced instead
    assert list(m[m.video_id == "ntsc"].frame_index) == list(range(0, 75, 10))
    assert list(m[m.video_id == "v30"].frame_index) == [math.ceil(k * 90 / 8) for k in range(8)]
    q = pd.read_parquet(out / "quarantine")
    unsafe = q[q.reason == "unsafe_video_id"]
    assert sorted(unsafe.video_id) == sorted(["../evil", ".hidden", "a/b"])
    # the cut video: quarantined as truncated, the frames before the cut kept (and they are the right ones)
    assert set(q[q.video_id == "cut"].reason) <= {"truncated_video", "decode_error"}
    assert "truncated_video" in set(q[q.video_id == "cut"].reason) and set(q.video_id) == {*unsafe.video_id, "cut"}
    cut = m[m.video_id == "cut"]
    assert 0 < len(cut) < 8 and [counter(u) for u in cut.image] == list(cut.frame_index)
    assert sorted(os.listdir(out / "frames")) == ["cut", "ntsc", "v30"]
    assert not (tmp_path / "evil").exists() and summary["videos_quarantined"] == 3


def test_manifest_feeds_the_build_dataset_job(spark, fps_run, tmp_path):
    from yololake.build.config import load_config
    from yololake.build.main import run as build
    from yololake.build.plan import JobInputs
    from yololake.samples.videos import boxes_for_manifest

    out, _ = fps_run
    boxes = tmp_path / "boxes.parquet"
    n = boxes_for_manifest(str(out / "manifest"), str(boxes))
    config = load_config(ROOT / "conf" / "demo_video.yaml")
    dataset = tmp_path / "dataset"
    summary = build(spark, config, JobInputs((str(boxes),), (str(out / "manifest"),)), str(dataset))
    dataset = Path(current_folder(str(dataset)))
    assert summary["rows_in"] == n == 11 and summary["boxes_written"] == n and summary["quarantined"] == 0
    assert (dataset / L.SUCCESS).exists()
    labels = sorted(dataset.glob("labels/*/*/*.txt"))
    assert len(labels) == n
    m = manifest(out).set_index("frame_id")
    for label in labels[:4]:
        row = m.loc[label.stem]
        x0, y0, x1, y1 = car_box(row.frame_index, row.width, row.height)
        cls, cx, cy, w, h = label.read_text().split()
        assert cls == "0" and float(cx) == pytest.approx((x0 + x1) / 2 / row.width, abs=1e-5)
        assert float(w) == pytest.approx((x1 - x0) / row.width, abs=1e-5)
        image = label.parents[3] / "images" / label.parent.parent.name / label.parent.name / f"{label.stem}.jpg"
        assert counter(str(image)) == row.frame_index   # the dataset image is the extracted frame
