"""Pure sampling and timing decisions, in exact fractions (no float drift at 30000/1001 fps).

Times are seconds relative to the video's first presentation time (`start_pts`); frame indices are
derived from the presentation timestamp and the stream's average rate, so every segment of a video
computes the same global index for a frame without seeing the frames before it.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

# A video id becomes a folder name and a frame-id prefix: no separators, NUL or control characters,
# no leading dot ('.', '..', hidden files), no surrounding blanks, short enough to leave room for the pts.
_SAFE_VIDEO_ID = re.compile(r"[^/\\\x00-\x1F\x7F]{1,180}")


def is_safe_video_id(video_id: object) -> bool:
    return (isinstance(video_id, str) and _SAFE_VIDEO_ID.fullmatch(video_id) is not None
            and not video_id.startswith(".") and video_id == video_id.strip())


def fraction(text: str | int | float | Fraction) -> Fraction:
    """Exact fraction from "30000/1001", an int, or a decimal such as 2.5 (read from its text, not its binary)."""
    if isinstance(text, float):
        return Fraction(repr(text))
    return Fraction(text)


def round_half_up(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))


def relative_time(pts: int, start_pts: int, time_base: Fraction) -> Fraction:
    return (pts - start_pts) * time_base


def frame_index(pts: int, start_pts: int, time_base: Fraction, rate: Fraction) -> int:
    """Global frame number from the timestamp: round((pts - start) * time_base * rate)."""
    return round_half_up(relative_time(pts, start_pts, time_base) * rate)


def timestamp_ms(pts: int, time_base: Fraction) -> int:
    """Presentation time in whole milliseconds (rounded half up), from the exact pts * time_base."""
    return round_half_up(pts * time_base * 1000)


def frame_id(video_id: str, pts: int) -> str:
    """Stable and unique within a video: the presentation timestamp, zero-padded so ids sort in time."""
    return f"{video_id}_{pts:012d}" if pts >= 0 else f"{video_id}_m{-pts:011d}"


@dataclass(frozen=True)
class Policy:
    """What a video keeps. every_n: every N-th frame by global index (1 = all frames).
    step: keep the first frame at or after each target time k*step (k = 0, 1, ... < limit when limit > 0)."""

    every_n: int = 1
    step: Fraction | None = None
    limit: int = 0

    def to_row(self) -> dict:
        return {"every_n": self.every_n, "step": str(self.step) if self.step is not None else None,
                "limit": self.limit}

    @classmethod
    def from_row(cls, every_n: int, step: str | None, limit: int) -> "Policy":
        return cls(int(every_n), Fraction(step) if step else None, int(limit))


def choose_policy(every_n: int, fps: Fraction | None, max_frames: int, n_frames: int, rate: Fraction) -> Policy:
    """The policy for one video: the configured one, or evenly spaced targets when it would exceed max_frames.

    n_frames is the video's frame count (from the container, or duration * rate); the duration spanned
    by the targets is n_frames / rate, so target k lands on frame ceil(k * n_frames / max_frames).
    """
    base = Policy(every_n=1, step=1 / fps) if fps else Policy(every_n=max(1, every_n))
    if max_frames <= 0 or n_frames <= 0:
        return base
    duration = Fraction(n_frames) / rate
    expected = math.ceil(duration * fps) if fps else math.ceil(n_frames / base.every_n)
    if expected <= max_frames:
        return base
    return Policy(every_n=1, step=duration / max_frames, limit=max_frames)


def keep(policy: Policy, index: int, t: Fraction, rate: Fraction) -> bool:
    """Whether the frame with global `index` at relative time `t` is sampled.

    With targets: kept when a target time lies in (t - 1/rate, t], i.e. this is the first frame at or
    after it (for a constant rate; the previous frame is 1/rate earlier).
    """
    if policy.step is None:
        return index % policy.every_n == 0
    k = math.floor(t / policy.step)
    if policy.limit > 0:
        k = min(k, policy.limit - 1)
    return k >= 0 and k * policy.step > t - 1 / rate


@dataclass(frozen=True)
class Segment:
    """Half-open time interval [start, end) of relative time; None = unbounded (first / last segment)."""

    index: int
    start: Fraction | None
    end: Fraction | None

    def contains(self, t: Fraction) -> bool:
        return (self.start is None or t >= self.start) and (self.end is None or t < self.end)


def plan_segments(duration: Fraction, seconds: Fraction) -> list[Segment]:
    """Split [0, duration) into segments of `seconds`; the first and last are open-ended, so a frame
    before 0 or after the advertised duration still belongs to exactly one segment."""
    n = max(1, math.ceil(duration / seconds)) if duration > 0 else 1
    return [Segment(k, None if k == 0 else k * seconds, None if k == n - 1 else (k + 1) * seconds)
            for k in range(n)]
