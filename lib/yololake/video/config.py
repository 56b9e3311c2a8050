"""extract-frames configuration (conf/extract_frames.yaml): typed, validated before Spark starts."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from yololake.config import Between, Section, Sections, SparkSettings, StorageConfig, fail, load_typed, parse_typed


@dataclass(frozen=True)
class SamplingConfig(Section):
    SECTION: ClassVar[str] = "sampling"
    every_n: int = 0
    """Keep every N-th frame (by frame index from the timestamp); 0: off."""
    fps: float = 0.0
    """Target rate: the first frame at or after each time k/fps; 0: off. Not together with every_n."""
    max_frames: int = 0
    """Most frames per video; a video that would give more gets evenly spaced target times. 0: no cap."""

    def check(self, key: str) -> None:
        for name in ("every_n", "fps", "max_frames"):
            if getattr(self, name) < 0:
                fail(f"{key}.{name}", f"must not be negative, got {getattr(self, name)}")
        if self.every_n and self.fps:
            fail(key, f"every_n ({self.every_n}) and fps ({self.fps}) are exclusive; set one of them to 0")


@dataclass(frozen=True)
class SegmentsConfig(Section):
    SECTION: ClassVar[str] = "segments"
    seconds: float = 60.0
    """Length of the time segments a long video is split into; each segment is decoded by its own task."""

    def check(self, key: str) -> None:
        if not self.seconds > 0:
            fail(f"{key}.seconds", f"must be a positive number of seconds, got {self.seconds}")


@dataclass(frozen=True)
class ImageConfig(Section):
    SECTION: ClassVar[str] = "image"
    quality: Annotated[int, Between(1, 95)] = 90
    """JPEG quality, 1-95 (Pillow's useful range)."""
    max_side: int = 0
    """Resize so the longer side is at most this many pixels (aspect kept); 0: original size."""

    def check(self, key: str) -> None:
        if self.max_side < 0:
            fail(f"{key}.max_side", f"must be 0 (no resize) or a number of pixels, got {self.max_side}")


@dataclass(frozen=True)
class InputConfig(Section):
    SECTION: ClassVar[str] = "input"
    format: Literal["auto", "folder", "parquet", "csv", "json"] = "auto"
    """folder: every file under --videos is a video (id = file stem); parquet/csv/json: a table of
    videos; auto: a table when --videos ends in .parquet/.csv/.json, else a folder."""
    id_column: str = "video_id"
    uri_column: str = "uri"
    csv_header: bool = True


@dataclass(frozen=True)
class ExtractConfig(SparkSettings, Sections):
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    segments: SegmentsConfig = field(default_factory=SegmentsConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    input: InputConfig = field(default_factory=InputConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    """Object-store settings for --videos and --out URLs (as in the build-dataset config)."""


def parse_extract_config(data: object) -> ExtractConfig:
    return parse_typed(ExtractConfig, data)


def load_extract_config(path: str | Path | None, overrides: Sequence[str] = ()) -> ExtractConfig:
    """The config file (or the defaults when None) + `key=value` overrides; errors name the file and key."""
    return load_typed(ExtractConfig, path, overrides)
