"""extract-frames: the pure sampling and timing rules, config and argument parsing (no Spark, no video)."""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
from yololake.errors import ConfigError
from yololake.video import sampling as S
from yololake.video.config import load_extract_config, parse_extract_config
from yololake.video.main import cli_overrides, parse_args

NTSC = Fraction(30000, 1001)


def kept_indices(policy: S.Policy, n_frames: int, rate: Fraction) -> list[int]:
    """Apply `keep` to a constant-rate video of n_frames frames (frame i at i/rate)."""
    return [i for i in range(n_frames) if S.keep(policy, i, Fraction(i) / rate, rate)]


def test_ntsc_timestamps_do_not_drift():
    tb = Fraction(1, 30000)
    # An hour in: frame 107892 has pts 107892 * 1001; float accumulation of 1/29.97 drifts here.
    pts = 107892 * 1001
    assert S.frame_index(pts, 0, tb, NTSC) == 107892
    assert S.timestamp_ms(pts, tb) == 3599996  # 107892 * 1001 / 30 = 3599996.4 ms
    assert S.timestamp_ms(15015, tb) == 501    # 500.5 ms rounds half up
    assert S.frame_index(512 * 7 + 3, 0, Fraction(1, 15360), Fraction(30)) == 7  # near-exact pts still maps


def test_frame_id_is_stable_and_sortable():
    assert S.frame_id("cam", 1001) == "cam_000000001001"
    assert S.frame_id("cam", -2) == "cam_m00000000002"
    ids = [S.frame_id("v", p) for p in (0, 5, 1001, 30000)]
    assert ids == sorted(ids) and len(set(ids)) == 4


def test_every_n():
    assert kept_indices(S.Policy(every_n=10), 95, Fraction(30)) == list(range(0, 95, 10))
    assert kept_indices(S.Policy(every_n=1), 7, Fraction(30)) == list(range(7))


@pytest.mark.parametrize("rate", [Fraction(30), Fraction(25), NTSC, Fraction(24000, 1001)])
@pytest.mark.parametrize("fps", [Fraction(1), Fraction(2), Fraction(5, 2), Fraction(7)])
def test_fps_keeps_first_frame_at_or_after_each_target(rate, fps):
    n = 400
    got = kept_indices(S.Policy(step=1 / fps), n, rate)
    duration_targets = [Fraction(k) / fps for k in range(math.ceil(Fraction(n) / rate * fps))]
    want = sorted({math.ceil(t * rate) for t in duration_targets if math.ceil(t * rate) < n})
    assert got == want
    for i in got:   # the kept frame is at or after its target, the frame before it is not
        assert any(Fraction(i - 1) / rate < t <= Fraction(i) / rate for t in duration_targets)


def test_fps_above_the_frame_rate_keeps_every_frame_once():
    assert kept_indices(S.Policy(step=Fraction(1, 100)), 50, Fraction(30)) == list(range(50))


@pytest.mark.parametrize("n,m", [(90, 5), (90, 8), (75, 8), (1000, 7), (10, 10)])
def test_max_frames_evenly_spaced(n, m):
    rate = NTSC
    policy = S.choose_policy(0, None, m, n, rate)
    assert policy.limit == (m if n > m else 0)  # no cap needed when the video has no more frames
    got = kept_indices(policy, n, rate)
    assert got == [math.ceil(Fraction(k * n, m)) for k in range(m)]


def test_choose_policy_keeps_the_configured_policy_under_the_cap():
    assert S.choose_policy(10, None, 8, 75, Fraction(30)) == S.Policy(every_n=10)   # 8 frames: not capped
    assert S.choose_policy(10, None, 8, 90, Fraction(30)).limit == 8              # 9 frames: capped
    assert S.choose_policy(0, Fraction(1), 3, 90, Fraction(30)) == S.Policy(step=Fraction(1))  # 3 s at 1 fps
    assert S.choose_policy(0, Fraction(2), 3, 90, Fraction(30)).limit == 3
    assert S.choose_policy(0, None, 0, 90, Fraction(30)) == S.Policy(every_n=1)


def test_segments_are_half_open_and_cover_everything():
    segments = S.plan_segments(Fraction(2002, 1000), Fraction(1, 2))
    assert len(segments) == 5 and segments[0].start is None and segments[-1].end is None
    for i in range(-5, 80):   # 30000/1001 frame times, including those past the duration and before 0
        t = Fraction(i * 1001, 30000)
        assert sum(seg.contains(t) for seg in segments) == 1
    assert segments[1].contains(Fraction(1, 2)) and not segments[0].contains(Fraction(1, 2))
    assert len(S.plan_segments(Fraction(0), Fraction(60))) == 1


@pytest.mark.parametrize("video_id,safe", [
    ("cam_01", True), ("2024-01-01 drive", True), ("../evil", False), ("a/b", False), ("a\\b", False),
    ("..", False), (".hidden", False), ("nul\x00", False), (" pad", False), ("", False), ("x" * 181, False),
    (None, False)])
def test_safe_video_ids(video_id, safe):
    assert S.is_safe_video_id(video_id) is safe


def test_config_file_and_errors(tmp_path):
    config = load_extract_config("conf/extract_frames.yaml")
    assert config.sampling.fps == 1.0 and config.segments.seconds == 60
    with pytest.raises(ConfigError, match=r"sampling: every_n \(3\) and fps \(2.0\) are exclusive"):
        parse_extract_config({"sampling": {"every_n": 3, "fps": 2}})
    with pytest.raises(ConfigError, match=r"segments.seconds: must be a positive number of seconds, got 0"):
        parse_extract_config({"segments": {"seconds": 0}})
    with pytest.raises(ConfigError, match=r"image.quality: must be between 1 and 95, got 100"):
        parse_extract_config({"image": {"quality": 100}})
    with pytest.raises(ConfigError, match=r"^sampling.fbs: unknown key"):
        parse_extract_config({"sampling": {"fbs": 1}})


def test_rate_flags_override_the_config():
    args = parse_args(["--videos", "v", "--out", "o", "--every-n", "5", "--max-frames", "9"])
    config = load_extract_config("conf/extract_frames.yaml", cli_overrides(args))
    assert (config.sampling.every_n, config.sampling.fps, config.sampling.max_frames) == (5, 0.0, 9)
    args = parse_args(["--videos", "v", "--out", "o", "--fps", "0.5"])
    assert load_extract_config(None, cli_overrides(args)).sampling.fps == 0.5
    with pytest.raises(SystemExit):
        parse_args(["--videos", "v", "--out", "o", "--fps", "1", "--every-n", "2"])


def test_main_reports_one_line_for_a_bad_flag(capsys):
    from yololake.video.main import main

    assert main(["--videos", "v", "--out", "o", "--fps", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["extract_frames: error: sampling.fps: must not be negative, got -1.0"]
