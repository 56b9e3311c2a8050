"""The build-dataset config (conf/demo.yaml, conf/udacity.yaml): its sections, each checked when constructed.

Rules that need the command line too (--out, --frames) are in `check_run`, which also runs before Spark starts.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from yololake.config import (
    Between,
    Fraction,
    Section,
    Sections,
    SparkSettings,
    StorageConfig,
    TableConfig,
    fail,
    integral_text,
    load_typed,
    parse_typed,
)
from yololake.dataset.layout import SPLITS
from yololake.importers.formats import IMPORT_FORMATS
from yololake.storage import is_local


@dataclass(frozen=True)
class AnnotationsConfig(TableConfig):
    SECTION: ClassVar[str] = "annotations"
    frame_column: str = "frame"
    """Column holding the frame id; joined to the manifest and used (minus its image extension) as file key."""
    class_column: str = "class"
    box_format: Literal["xyxy_pixel", "xywh_pixel", "cxcywh_normalized"] = "xyxy_pixel"
    """xyxy_pixel (corners, pixels), xywh_pixel (top-left + size, pixels) or cxcywh_normalized (YOLO-style)."""
    box_columns: tuple[str, str, str, str] = ("xmin", "ymin", "xmax", "ymax")
    """The four coordinate columns, in the order the box format names them."""
    box_margin: Annotated[float, Between(0, 1000, " image sizes")] = 1.0
    """How far outside the image a corner may lie, in image sizes, for the box to be clipped; beyond it the
    box is quarantined as box_outside_image (an absurd coordinate such as 1e30 is not a giant box)."""
    on_unreadable_file: Literal["fail", "quarantine"] = "fail"
    """A zero-byte or unreadable file: fail naming it, or leave it out and list it as unreadable_file."""
    format: Literal["auto", "parquet", "csv", "json", "coco", "voc", "cvat", "labelstudio", "groundtruth"] = "auto"
    """parquet | csv | json | auto (from the file extensions), or a labeling tool's export (yololake.importers):
    coco, voc, cvat, labelstudio, groundtruth. An export brings its own columns, box convention, frame table
    (images and sizes) and, when classes.names is omitted, class names."""
    rotated: Literal["quarantine", "bounding_box"] = "quarantine"
    """cvat / labelstudio: a box with rotation != 0 is quarantined as rotated_box, or replaced by the
    axis-aligned box around it (bounding_box)."""
    voc_pixels: Literal["labelimg", "one_based"] = "labelimg"
    """voc: corners as LabelImg's own YOLO export reads them (xmin..xmax as written), or Pascal VOC's 1-based
    inclusive pixels (xmin - 1 .. xmax, as the VOC devkit)."""
    difficult: Literal["keep", "quarantine"] = "keep"
    """voc: a box marked difficult is written (as LabelImg's YOLO export does) or quarantined as difficult."""
    attribute: str = ""
    """groundtruth: the labeling job's attribute name (empty: the one key with a `<name>-metadata` twin)."""
    staging: str = ""
    """coco / labelstudio: where the streamed export is staged as parquet chunks for Spark to read (a folder
    every executor reaches, e.g. s3://bucket/tmp/yololake; empty: a local temporary folder, for local mode)."""

    def check(self, key: str) -> None:
        if len(self.box_columns) != 4 or len(set(self.box_columns)) != 4:
            fail(f"{key}.box_columns", f"needs 4 distinct column names, got {list(self.box_columns)}")


@dataclass(frozen=True)
class FramesConfig(TableConfig):
    SECTION: ClassVar[str] = "frames"
    frame_column: str = "frame"
    image_column: str = "image"
    width_column: str = "width"
    height_column: str = "height"


@dataclass(frozen=True)
class ImagesConfig(Section):
    SECTION: ClassVar[str] = "images"
    mode: Literal["link", "copy", "none"] = "link"
    """link: symlink to the source image (fast, source must stay put); copy: a real copy;
    none: labels and lists only (benchmarks, or images staged by other means)."""
    extension: str = "jpg"
    """Extension added to frame ids that carry none, when image paths come from --images."""
    check_exists: bool = True
    """Open every frame's image where it lives (header only) inside Spark tasks: its format, size and EXIF
    orientation go to the index, and a missing, damaged, too small or mis-sized image quarantines the frame.
    false: no image is opened (sizes must come from --frames or image_size)."""
    decode: bool = False
    """Also decode every image fully (JPEG at 1/8 scale: the whole scan, a cheaper IDCT): ~100x the header
    read, and it catches only what Pillow refuses to decode (a header read already catches truncation)."""
    size_mismatch: Literal["quarantine", "trust_image"] = "quarantine"
    """When the manifest or image_size disagrees with the image's displayed size: quarantine the frame, or
    trust the image (its size normalises the boxes)."""

    def check(self, key: str) -> None:
        if not self.extension or "/" in self.extension or self.extension.startswith("."):
            fail(f"{key}.extension", f"{self.extension!r} must be a bare extension such as jpg")


@dataclass(frozen=True)
class ImageSizeConfig(Section):
    """Every image's displayed size, asserted when there is no frame manifest (the Udacity 480x300 case);
    optional: without it the sizes come from the images."""

    SECTION: ClassVar[str] = "image_size"
    width: int = 0
    height: int = 0

    def check(self, key: str) -> None:
        for name in ("width", "height"):
            if getattr(self, name) < 0:
                fail(f"{key}.{name}", f"must be a positive number of pixels, got {getattr(self, name)}")

    @property
    def given(self) -> bool:
        return bool(self.width and self.height)


@dataclass(frozen=True)
class ClassesConfig(Section):
    SECTION: ClassVar[str] = "classes"
    names: tuple[str, ...] = ()
    """Class names; list order is the YOLO class id."""
    map: dict[str, str] = field(default_factory=dict)
    """Source class value -> name. Empty: source values are the names themselves."""

    def check(self, key: str) -> None:
        dupes = sorted({n for n in self.names if self.names.count(n) > 1})
        if dupes:
            fail(f"{key}.names", f"names must be unique, repeated: {', '.join(dupes)}")
        seen: dict[str, str] = {}
        for source, name in self.map.items():
            if name not in self.names:
                fail(f"{key}.map.{source}", f"maps to {name!r}, which is not in {key}.names {list(self.names)}")
            same = seen.setdefault(integral_text(source), source)
            if same != source and self.map[same] != name:
                fail(f"{key}.map.{source}", f"is the same class value as {same} (class values 1.0 and 1 match), "
                                            f"but maps to {name!r}, not {self.map[same]!r}")

    def source_to_id(self) -> dict[str, int]:
        """Source value (as text; an integral number as a whole number: "1.0" as "1") -> YOLO class id."""
        ids = {name: i for i, name in enumerate(self.names)}
        pairs = self.map.items() if self.map else ((name, name) for name in self.names)
        return {integral_text(source): ids[name] for source, name in pairs}


@dataclass(frozen=True)
class SplitConfig(Section):
    SECTION: ClassVar[str] = "split"
    mode: Literal["hash", "column", "source_file"] = "hash"
    """hash: of `column` (a group such as the video id) with `ratios` and `seed`;
    column: read from `column`, mapped through `values`; source_file: from the file name via `files`."""
    column: str = ""
    ratios: dict[str, float] = field(default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1})
    seed: int = 0
    values: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def check(self, key: str) -> None:
        for mapping_key, mapping in (("ratios", self.ratios), ("values", self.values), ("files", self.files)):
            for split in mapping if mapping_key == "ratios" else mapping.values():
                if split not in SPLITS:
                    fail(f"{key}.{mapping_key}", f"{split!r} is not one of {', '.join(SPLITS)}")
        if self.mode in ("hash", "column") and not self.column:
            fail(f"{key}.column", f"is required with mode {self.mode}")
        if self.mode == "source_file" and not self.files:
            fail(f"{key}.files", "is required with mode source_file: map each annotation file name to a split")
        if self.mode == "hash":
            if any(r < 0 for r in self.ratios.values()):
                fail(f"{key}.ratios", f"must not be negative, got {self.ratios}")
            total = sum(self.ratios.values())
            if not math.isclose(total, 1.0, abs_tol=1e-9):
                fail(f"{key}.ratios", f"must sum to 1, got {total:g} from {self.ratios}")


@dataclass(frozen=True)
class BackgroundConfig(Section):
    """Frames in the manifest without boxes."""

    SECTION: ClassVar[str] = "background"
    policy: Literal["keep", "drop", "sample"] = "keep"
    """keep: all, with an empty label file; drop: none; sample: a deterministic `fraction` of them."""
    fraction: Fraction = 0.1


@dataclass(frozen=True)
class OutputConfig(Section):
    SECTION: ClassVar[str] = "output"
    frames_per_shard: int = 10_000
    """Most frames in one shard folder: no folder of a million files."""
    layout: Literal["files", "shard_archive"] = "files"
    """files: one label file per frame; shard_archive: one tar per shard (labels/<split>/<shard>.tar),
    about a hundred objects for a million frames instead of a million. The launcher unpacks it."""
    archive_images: bool = False
    """shard_archive only: put the images in the shard's tar too (else they follow images.mode)."""
    stale_after_seconds: Annotated[float, Between(10, unit=" seconds")] = 600.0
    """An unfinished version whose writer stopped its heartbeat this long ago (or, on this host, whose
    process is gone) is a leftover the next build removes."""

    def check(self, key: str) -> None:
        if self.frames_per_shard < 1:
            fail(f"{key}.frames_per_shard", f"must be at least 1, got {self.frames_per_shard}")
        if self.archive_images and self.layout != "shard_archive":
            fail(f"{key}.archive_images", "needs layout: shard_archive")


@dataclass(frozen=True)
class QuarantineConfig(Section):
    SECTION: ClassVar[str] = "quarantine"
    max_fraction: Fraction = 0.05
    """Fail, committing nothing, when more than this fraction of annotation rows is quarantined."""


@dataclass(frozen=True)
class ReportConfig(Section):
    """The dataset report (charts, preview mosaics, index.html) rendered into OUT/report/ by the job."""

    SECTION: ClassVar[str] = "report"
    enabled: bool = True
    preview_frames: Annotated[int, Between(0)] = 16
    """Frames per split drawn with their boxes in the preview mosaics."""


@dataclass(frozen=True)
class JobConfig(SparkSettings, Sections):
    classes: ClassesConfig = ClassesConfig()  # frozen: one shared, immutable default
    """Required, except with a labeling tool's export, whose own class list stands in for omitted names."""
    annotations: AnnotationsConfig = field(default_factory=AnnotationsConfig)
    frames: FramesConfig = field(default_factory=FramesConfig)
    images: ImagesConfig = field(default_factory=ImagesConfig)
    image_size: ImageSizeConfig = field(default_factory=ImageSizeConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    background: BackgroundConfig = field(default_factory=BackgroundConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    quarantine: QuarantineConfig = field(default_factory=QuarantineConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    def check(self) -> None:
        imported = self.annotations.format in IMPORT_FORMATS
        if not self.classes.names and not imported:
            fail("classes.names", "must list at least one class name (only a labeling tool's export, "
                                  f"annotations.format {', '.join(IMPORT_FORMATS)}, defines its own)")
        if imported and self.annotations.box_format != "xyxy_pixel":
            fail("annotations.box_format", f"is set by the {self.annotations.format} export itself; remove it")


def check_run(config: JobConfig, out: str, frames: Sequence[str]) -> None:
    """The rules between the config and the command line; checked before Spark starts."""
    if config.images.mode == "link" and not config.output.archive_images and not is_local(out):
        fail("images.mode", f"link writes symlinks, which an object store cannot hold, and --out {out} is not "
                            "a local path; set images.mode: copy (or none), or write to a local --out")
    exported = config.annotations.format in IMPORT_FORMATS  # an export gives its frames' sizes itself
    if frames and exported and config.annotations.format != "cvat":
        fail("annotations.format", f"{config.annotations.format} exports list their own images and sizes: drop "
                                   "--frames (only a CVAT video export is joined to an extract-frames manifest)")
    if not frames and not exported and not config.image_size.given and not config.images.check_exists:
        fail("image_size", "no --frames manifest gives the image sizes and images.check_exists is false, so no "
                           "image is read: set image_size.width and image_size.height (e.g. 480 and 300 for "
                           "Udacity), pass --frames, or set images.check_exists: true")
    if config.images.decode and not config.images.check_exists:
        fail("images.decode", "needs images.check_exists: true (no image is opened without it)")


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> JobConfig:
    """The build-dataset config."""
    return load_typed(JobConfig, path, overrides)


def parse_config(data: object) -> JobConfig:
    return parse_typed(JobConfig, data)
