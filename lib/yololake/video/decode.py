"""PyAV work inside Spark tasks: probe a video, decode one time segment, write sampled frames as JPEGs.

Bad input surfaces as VideoError(reason, detail), which the caller turns into a quarantine row.
"""
from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import fsspec

from yololake.storage import local_path
from yololake.video import sampling as S

UNREADABLE = "unreadable_video"        # not a media file, or its header/index is missing (e.g. truncated mp4)
NO_VIDEO_STREAM = "no_video_stream"
UNKNOWN_RATE = "unknown_frame_rate"
TRUNCATED = "truncated_video"          # the data ends before the frames the container announces
DECODE_ERROR = "decode_error"          # decoding failed part-way; frames before the error are kept
UNSAFE_VIDEO_ID = "unsafe_video_id"
DUPLICATE_VIDEO_ID = "duplicate_video_id"

# Seek back this much further (seconds) when the keyframe found lies after the segment start (B-frames,
# open GOPs, a sparse index); None = decode from the start of the file. Each step is verified.
_SEEK_BACKOFF = (Fraction(0), Fraction(2), Fraction(16), None)


class VideoError(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class VideoInfo:
    stream_index: int
    time_base: Fraction
    rate: Fraction
    start_pts: int
    n_frames: int
    duration: Fraction
    width: int
    height: int


@contextlib.contextmanager
def open_video(uri: str, options: dict | None = None) -> Iterator[av.container.InputContainer]:
    """Open a local path directly (FFmpeg's own IO), anything else through fsspec (seekable file object);
    `options` are the fsspec storage options for the URL."""
    local = local_path(uri)
    try:
        with contextlib.ExitStack() as stack:
            source = local if local is not None else stack.enter_context(fsspec.open(uri, "rb", **(options or {})))
            container = stack.enter_context(av.open(source, "r"))
            yield container
    except VideoError:
        raise
    except (av.error.FFmpegError, OSError, EOFError, ValueError, UnicodeDecodeError) as exc:
        raise VideoError(UNREADABLE, f"{type(exc).__name__}: {exc}") from None


def _video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise VideoError(NO_VIDEO_STREAM, f"{len(container.streams)} stream(s), none of them video")
    return container.streams.video[0]


def probe(uri: str, options: dict | None = None) -> VideoInfo:
    with open_video(uri, options) as container:
        stream = _video_stream(container)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0 or stream.time_base is None:
            raise VideoError(UNKNOWN_RATE, f"average rate {stream.average_rate}, time base {stream.time_base}")
        tb, rate = Fraction(stream.time_base), Fraction(rate)
        if stream.duration:
            duration = stream.duration * tb
        elif container.duration:
            duration = Fraction(container.duration, av.time_base)
        else:
            duration = Fraction(stream.frames or 0) / rate
        n_frames = stream.frames if stream.frames and stream.frames > 0 else S.round_half_up(duration * rate)
        ctx = stream.codec_context
        return VideoInfo(stream.index, tb, rate, stream.start_time or 0, int(n_frames), duration,
                         ctx.width, ctx.height)


def check_complete(info: VideoInfo, segment: S.Segment, result: "SegmentResult") -> VideoError | None:
    """After end of file: truncated when frames the container announces (n_frames, at 1/rate) that fall in
    this segment were never decoded; 1.5 frame periods of slack for rounding in the container's numbers."""
    if result.error is not None or result.reached_end or info.n_frames <= 0:
        return result.error
    expected = Fraction(info.n_frames - 1) / info.rate
    if segment.end is not None:
        expected = min(expected, segment.end - 1 / info.rate)
    if segment.start is not None and expected < segment.start:
        return None
    seen = result.last_t
    if seen is None or seen < expected - Fraction(3, 2) / info.rate:
        got = "no frame" if seen is None else f"frames up to {float(seen):.3f}s"
        return VideoError(TRUNCATED, f"segment {segment.index}: {got}, the container announces "
                                     f"{info.n_frames} frames (to {float(expected):.3f}s)")
    return None


@dataclass
class SegmentResult:
    decoded: int = 0         # frames of this segment (inside its interval) that were decoded
    kept: int = 0
    reached_end: bool = False
    last_index: int = -1
    last_t: Fraction | None = None
    error: VideoError | None = None


def decode_segment(uri: str, info: VideoInfo, segment: S.Segment, result: SegmentResult,
                   options: dict | None = None) -> Iterator:
    """Yield (frame, pts, index, t) for every frame of `segment`, in presentation order; fills `result`.

    Seeks to the keyframe before the segment start and drops frames before it; frames at or after the
    end belong to the next segment. A decode error ends the segment and is recorded in `result.error`.
    """
    for backoff in _SEEK_BACKOFF:
        try:
            with open_video(uri, options) as container:
                stream = container.streams[info.stream_index]
                stream.thread_type = "AUTO"
                if segment.start is not None and backoff is not None:
                    target = info.start_pts + math.floor((segment.start - backoff) / info.time_base)
                    container.seek(target, backward=True, any_frame=False, stream=stream)
                first = True
                for frame in container.decode(stream):
                    if frame.pts is None:
                        raise VideoError(DECODE_ERROR, "a frame without a presentation timestamp")
                    t = S.relative_time(frame.pts, info.start_pts, info.time_base)
                    if first and segment.start is not None and t > segment.start and backoff is not None:
                        break  # landed after the segment start: seek further back
                    first = False
                    if segment.end is not None and t >= segment.end:
                        result.reached_end = True
                        return
                    if segment.start is not None and t < segment.start:
                        continue
                    index = S.frame_index(frame.pts, info.start_pts, info.time_base, info.rate)
                    result.decoded += 1
                    result.last_index = max(result.last_index, index)
                    result.last_t = t if result.last_t is None else max(result.last_t, t)
                    yield frame, frame.pts, index, t
                else:
                    return  # end of file
        except VideoError as exc:
            result.error = exc if exc.reason != UNREADABLE else VideoError(
                DECODE_ERROR, f"at segment {segment.index}: {exc.detail}")
            return
        except (av.error.FFmpegError, OSError, EOFError, ValueError) as exc:
            result.error = VideoError(DECODE_ERROR, f"at segment {segment.index}: {type(exc).__name__}: {exc}")
            return


def target_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    if max_side <= 0 or max(width, height) <= max_side:
        return width, height
    scale = Fraction(max_side, max(width, height))
    return max(1, S.round_half_up(width * scale)), max(1, S.round_half_up(height * scale))


def encode_jpeg(frame: av.VideoFrame, quality: int, max_side: int) -> tuple[bytes, int, int]:
    width, height = target_size(frame.width, frame.height, max_side)
    image = frame.to_image(width=width, height=height) if (width, height) != (frame.width, frame.height) \
        else frame.to_image()
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue(), width, height
