"""Job configuration: `conf/*.yaml`, safe-loaded into typed, validated dataclasses.

Every field is checked before Spark starts, so a typo costs one clear line, not a cluster job.
Errors name the key, the bad value, the constraint and the fix.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

BOX_FORMATS = ("xyxy_pixel", "xywh_pixel", "cxcywh_normalized")
IMAGE_MODES = ("link", "copy", "none")
TABLE_FORMATS = ("auto", "parquet", "csv", "json")
SPLIT_MODES = ("hash", "column", "source_file")
SPLITS = ("train", "val", "test")
BACKGROUND_POLICIES = ("keep", "drop", "sample")
OUTPUT_LAYOUTS = ("files", "shard_archive")


T = typing.TypeVar("T")


class ConfigError(ValueError):
    """A bad config key or value; the message is meant to be shown to the user as is."""


def _fail(key: str, message: str) -> typing.NoReturn:
    raise ConfigError(f"{key}: {message}")


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        _fail(key, f"{value!r} is not one of {', '.join(allowed)}")


@dataclass(frozen=True)
class TableConfig:
    """How to read one input table (annotations or frame manifest)."""

    format: str = "auto"
    """parquet | csv | json | auto (from the file extensions)."""
    csv_header: bool = True

    def check(self, key: str) -> None:
        _choice(f"{key}.format", self.format, TABLE_FORMATS)


@dataclass(frozen=True)
class AnnotationsConfig(TableConfig):
    frame_column: str = "frame"
    """Column holding the frame id; joined to the manifest and used (minus its image extension) as file key."""
    class_column: str = "class"
    box_format: str = "xyxy_pixel"
    """xyxy_pixel (corners, pixels), xywh_pixel (top-left + size, pixels) or cxcywh_normalized (YOLO-style)."""
    box_columns: tuple[str, str, str, str] = ("xmin", "ymin", "xmax", "ymax")
    """The four coordinate columns, in the order the box format names them."""

    def check(self, key: str) -> None:
        super().check(key)
        _choice(f"{key}.box_format", self.box_format, BOX_FORMATS)
        if len(self.box_columns) != 4 or len(set(self.box_columns)) != 4:
            _fail(f"{key}.box_columns", f"needs 4 distinct column names, got {list(self.box_columns)}")


@dataclass(frozen=True)
class FramesConfig(TableConfig):
    frame_column: str = "frame"
    image_column: str = "image"
    width_column: str = "width"
    height_column: str = "height"


@dataclass(frozen=True)
class ImagesConfig:
    mode: str = "link"
    """link: symlink to the source image (fast, source must stay put); copy: a real copy;
    none: labels and lists only (benchmarks, or images staged by other means)."""
    extension: str = "jpg"
    """Extension added to frame ids that carry none, when image paths come from --images."""
    check_exists: bool = True
    """Quarantine boxes whose image file does not exist (one existence check per frame)."""

    def check(self, key: str) -> None:
        _choice(f"{key}.mode", self.mode, IMAGE_MODES)
        if not self.extension or "/" in self.extension or self.extension.startswith("."):
            _fail(f"{key}.extension", f"{self.extension!r} must be a bare extension such as jpg")


@dataclass(frozen=True)
class ImageSizeConfig:
    """Image size used when there is no frame manifest (the Udacity 480x300 case)."""

    width: int = 0
    height: int = 0

    def check(self, key: str) -> None:
        for name in ("width", "height"):
            if getattr(self, name) < 0:
                _fail(f"{key}.{name}", f"must be a positive number of pixels, got {getattr(self, name)}")


@dataclass(frozen=True)
class ClassesConfig:
    names: tuple[str, ...] = ()
    """Class names; list order is the YOLO class id."""
    map: dict[str, str] = field(default_factory=dict)
    """Source class value -> name. Empty: source values are the names themselves."""

    def check(self, key: str) -> None:
        if not self.names:
            _fail(f"{key}.names", "must list at least one class name")
        dupes = sorted({n for n in self.names if self.names.count(n) > 1})
        if dupes:
            _fail(f"{key}.names", f"names must be unique, repeated: {', '.join(dupes)}")
        for source, name in self.map.items():
            if name not in self.names:
                _fail(f"{key}.map.{source}", f"maps to {name!r}, which is not in {key}.names {list(self.names)}")

    def source_to_id(self) -> dict[str, int]:
        """Source value (as text) -> YOLO class id."""
        ids = {name: i for i, name in enumerate(self.names)}
        if not self.map:
            return dict(ids)
        return {source: ids[name] for source, name in self.map.items()}


@dataclass(frozen=True)
class SplitConfig:
    mode: str = "hash"
    """hash: of `column` (a group such as the video id) with `ratios` and `seed`;
    column: read from `column`, mapped through `values`; source_file: from the file name via `files`."""
    column: str = ""
    ratios: dict[str, float] = field(default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1})
    seed: int = 0
    values: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def check(self, key: str) -> None:
        _choice(f"{key}.mode", self.mode, SPLIT_MODES)
        for mapping_key, mapping in (("ratios", self.ratios), ("values", self.values), ("files", self.files)):
            for split in mapping if mapping_key == "ratios" else mapping.values():
                _choice(f"{key}.{mapping_key}", split, SPLITS)
        if self.mode in ("hash", "column") and not self.column:
            _fail(f"{key}.column", f"is required with mode {self.mode}")
        if self.mode == "source_file" and not self.files:
            _fail(f"{key}.files", "is required with mode source_file: map each annotation file name to a split")
        if self.mode == "hash":
            if any(r < 0 for r in self.ratios.values()):
                _fail(f"{key}.ratios", f"must not be negative, got {self.ratios}")
            total = sum(self.ratios.values())
            if not math.isclose(total, 1.0, abs_tol=1e-9):
                _fail(f"{key}.ratios", f"must sum to 1, got {total:g} from {self.ratios}")


@dataclass(frozen=True)
class BackgroundConfig:
    """Frames in the manifest without boxes."""

    policy: str = "keep"
    """keep: all, with an empty label file; drop: none; sample: a deterministic `fraction` of them."""
    fraction: float = 0.1

    def check(self, key: str) -> None:
        _choice(f"{key}.policy", self.policy, BACKGROUND_POLICIES)
        if not 0.0 <= self.fraction <= 1.0:
            _fail(f"{key}.fraction", f"must be between 0 and 1, got {self.fraction}")


@dataclass(frozen=True)
class OutputConfig:
    frames_per_shard: int = 10_000
    """Most frames in one shard folder: no folder of a million files."""
    layout: str = "files"
    """files: one label file per frame; shard_archive: one tar per shard (labels/<split>/<shard>.tar),
    about a hundred objects for a million frames instead of a million. The launcher unpacks it."""
    archive_images: bool = False
    """shard_archive only: put the images in the shard's tar too (else they follow images.mode)."""

    def check(self, key: str) -> None:
        if self.frames_per_shard < 1:
            _fail(f"{key}.frames_per_shard", f"must be at least 1, got {self.frames_per_shard}")
        _choice(f"{key}.layout", self.layout, OUTPUT_LAYOUTS)
        if self.archive_images and self.layout != "shard_archive":
            _fail(f"{key}.archive_images", "needs layout: shard_archive")


@dataclass(frozen=True)
class StorageConfig:
    """Object-store settings for --out and image URLs. Credentials are not set here: botocore's chain
    (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance roles) supplies them."""

    endpoint_url: str = ""
    """S3-compatible endpoint (MinIO, moto). Empty: botocore's AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL / AWS."""
    region: str = ""
    profile: str = ""
    max_attempts: int = 4
    """botocore attempts per request (standard mode: 500/503/SlowDown/connection errors, with backoff)."""
    s3fs_retries: int = 2
    """s3fs's own retry loop around botocore's; the two multiply."""
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    spark_s3_scheme: str = "s3a"
    """Scheme Spark reads s3:// input tables with: s3a (Hadoop's connector, conf/spark-s3a.conf) or s3 (EMR)."""

    def check(self, key: str) -> None:
        for name in ("max_attempts", "s3fs_retries"):
            if getattr(self, name) < 1:
                _fail(f"{key}.{name}", f"must be at least 1, got {getattr(self, name)}")
        for name in ("connect_timeout", "read_timeout"):
            if getattr(self, name) <= 0:
                _fail(f"{key}.{name}", f"must be a positive number of seconds, got {getattr(self, name)}")
        _choice(f"{key}.spark_s3_scheme", self.spark_s3_scheme, ("s3a", "s3"))


@dataclass(frozen=True)
class QuarantineConfig:
    max_fraction: float = 0.05
    """Fail, committing nothing, when more than this fraction of annotation rows is quarantined."""

    def check(self, key: str) -> None:
        if not 0.0 <= self.max_fraction <= 1.0:
            _fail(f"{key}.max_fraction", f"must be between 0 and 1, got {self.max_fraction}")


@dataclass(frozen=True)
class ReportConfig:
    """The dataset report (charts, preview mosaics, index.html) rendered into OUT/report/ by the job."""

    enabled: bool = True
    preview_frames: int = 16
    """Frames per split drawn with their boxes in the preview mosaics."""

    def check(self, key: str) -> None:
        if self.preview_frames < 0:
            _fail(f"{key}.preview_frames", f"must be 0 or more, got {self.preview_frames}")


class Sections:
    """A whole config: checks each of its sections, naming the section in errors."""

    def check(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if hasattr(value, "check"):
                value.check(f.name)


@dataclass(frozen=True)
class JobConfig(Sections):
    classes: ClassesConfig
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
    spark: dict[str, str] = field(default_factory=dict)
    """Extra Spark settings for the session this job creates (spark-submit --conf wins)."""


def _convert(value: object, hint: object, key: str) -> object:
    """Turn a YAML value into the field's declared type, or fail naming the key."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if origin in (tuple, list):
        if not isinstance(value, list):
            _fail(key, f"must be a list, got {value!r}")
        (item_hint, *_) = typing.get_args(hint) or (str,)
        return tuple(_convert(v, item_hint, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            _fail(key, f"must be a mapping, got {value!r}")
        _, value_hint = typing.get_args(hint)
        # Keys are source values (class ids, file names): compared as text, whatever YAML typed them as.
        return {str(k): _convert(v, value_hint, f"{key}.{k}") for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            _fail(key, f"must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(key, f"must be a whole number, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(key, f"must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if isinstance(value, (dict, list)) or value is None:
            _fail(key, f"must be a single value, got {value!r}")
        return str(value)
    raise TypeError(f"unsupported config type {hint!r} at {key}")  # a bug in this module, not user input


def _build(cls: type, data: object, key: str):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        _fail(key or "config", f"must be a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(map(str, data)) - set(names))
    if unknown:
        where = f"{key}.{unknown[0]}" if key else unknown[0]
        _fail(where, f"unknown key; allowed here: {', '.join(names)}")
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [n for n in required if n not in data]
    if missing:
        _fail(f"{key}.{missing[0]}" if key else missing[0], "is required")
    kwargs = {name: _convert(value, hints[name], f"{key}.{name}" if key else name) for name, value in data.items()}
    return cls(**kwargs)


def parse_typed(cls: type[T], data: object) -> T:
    config = _build(cls, data, "")
    config.check()
    return config


def parse_config(data: object) -> JobConfig:
    return parse_typed(JobConfig, data)


def apply_overrides(data: object, overrides: Sequence[str]) -> dict:
    """Apply `key.path=value` overrides (values parsed as YAML) on top of the loaded YAML."""
    data = dict(data or {}) if isinstance(data, dict) or data is None else data
    if not isinstance(data, dict):
        _fail("config", f"must be a mapping of keys, got {data!r}")
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. output.frames_per_shard=500")
        *parents, leaf = key.strip().split(".")
        node = data
        for i, part in enumerate(parents):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                _fail(".".join(parents[: i + 1]), f"is a single value, cannot set {key} inside it")
            else:
                child = node[part] = dict(child)
            node = child
        node[leaf] = yaml.safe_load(text) if text.strip() else ""
    return data


def load_typed(cls: type[T], path: str | Path | None, overrides: Sequence[str] = ()) -> T:
    """Read and validate a YAML config of type `cls` (+ --set overrides; no file: the defaults).
    Every problem is a ConfigError naming the file."""
    data: object = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"config {path} is not valid YAML: {exc}") from None
    data = apply_overrides(data, overrides)  # its errors name the --set item, not the file
    try:
        return parse_typed(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"config {path}: {exc}" if path is not None else str(exc)) from None


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> JobConfig:
    """The build-dataset config."""
    return load_typed(JobConfig, path, overrides)
