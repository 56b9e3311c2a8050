"""Config loading shared by every job: `conf/*.yaml`, safe-loaded into typed, validated frozen dataclasses.

A section validates itself when it is constructed, from YAML or in code: choices typed as `Literal[...]`
are checked against their type, then the section's own `check` runs. A whole config (`Sections`) adds its
cross-section rules. So a typo costs one clear line before Spark starts, not a cluster job. Errors name
the key, the bad value, the constraint and the fix. The sections shared by several jobs live here too.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import yaml

from yololake.errors import ConfigError

T = typing.TypeVar("T")
SparkUiBind = Literal["loopback", "all_interfaces"]
"""Where a local-mode Spark UI listens: 127.0.0.1, or every interface (Spark's own default)."""
_INTEGRAL = re.compile(r"^([+-]?[0-9]+)\.0*$")
INTEGRAL_PATTERN = _INTEGRAL.pattern
"""A whole number written with a fractional part of zeros ("2.0", as a pandas round trip writes it)."""


def integral_text(value: str) -> str:
    """ "2.0" -> "2" (a class id written as a float); any other text unchanged. `map_classes` does the same in
    Spark, so a config key and a table value match whichever way either was written."""
    return _INTEGRAL.sub(r"\1", value.strip())


def fail(key: str, message: str) -> typing.NoReturn:
    raise ConfigError(f"{key}: {message}")


@dataclass(frozen=True)
class Between:
    """A number field's bounds, declared with its type: `Annotated[float, Between(0, 1)]`."""

    low: float
    high: float = math.inf
    unit: str = ""

    def problem(self, value: float) -> str | None:
        if self.low <= value <= self.high:
            return None
        if self.high == math.inf:
            return f"must be {self.low:g}{self.unit} or more, got {value}"
        return f"must be between {self.low:g} and {self.high:g}{self.unit}, got {value}"


Fraction = Annotated[float, Between(0, 1)]
"""A share, from 0 to 1."""


@functools.cache
def _hints(cls: type) -> dict:
    return typing.get_type_hints(cls)


def choices(cls: type, name: str) -> tuple[str, ...]:
    """The allowed values of a `Literal[...]` field."""
    return typing.get_args(_hints(cls)[name])


@functools.cache
def _bounds(cls: type) -> dict[str, Between]:
    hints = typing.get_type_hints(cls, include_extras=True)
    return {name: meta for name, hint in hints.items() if typing.get_origin(hint) is Annotated
            for meta in hint.__metadata__ if isinstance(meta, Between)}


def _check_fields(obj: object, prefix: str) -> None:
    """Every `Literal[...]` field of a dataclass holds one of its choices, every `Between` field is in bounds."""
    for f in dataclasses.fields(obj):
        value, bound = getattr(obj, f.name), _bounds(type(obj)).get(f.name)
        if typing.get_origin(_hints(type(obj))[f.name]) is Literal and value not in choices(type(obj), f.name):
            fail(f"{prefix}{f.name}", f"{value!r} is not one of {', '.join(choices(type(obj), f.name))}")
        if bound is not None and bound.problem(value):
            fail(f"{prefix}{f.name}", bound.problem(value))


class Section:
    """A config section: checked when constructed. `SECTION` is its key in the YAML, used in messages."""

    SECTION: ClassVar[str] = ""

    def __post_init__(self) -> None:
        _check_fields(self, f"{self.SECTION}.")
        self.check(self.SECTION)

    def check(self, key: str) -> None:
        """Rules between the section's own fields; `key` names the section in messages."""


class Sections:
    """A whole config; its sections checked themselves. `check` holds the rules across sections."""

    def __post_init__(self) -> None:
        _check_fields(self, "")
        self.check()

    def check(self) -> None:
        """Rules across sections (none by default)."""


@dataclass(frozen=True, kw_only=True)
class SparkSettings:
    """A job config's keys for the Spark session the job creates (inherited by the job's `Sections`)."""

    spark: dict[str, str] = dataclasses.field(default_factory=dict)
    """Extra Spark settings for the session this job creates (spark-submit --conf wins)."""
    spark_ui_bind: SparkUiBind = "loopback"
    """Local mode: the Spark UI listens on 127.0.0.1 (loopback) or every interface (all_interfaces)."""


@dataclass(frozen=True)
class TableConfig(Section):
    """How to read one input table."""

    SECTION: ClassVar[str] = "table"
    format: Literal["auto", "parquet", "csv", "json"] = "auto"
    """parquet | csv | json | auto (from the file extensions)."""
    csv_header: bool = True


@dataclass(frozen=True)
class StorageConfig(Section):
    """Object-store settings for --out and image URLs. Credentials are not set here: botocore's chain
    (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance roles) supplies them."""

    SECTION: ClassVar[str] = "storage"
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
    spark_s3_scheme: Literal["s3a", "s3"] = "s3a"
    """Scheme Spark reads s3:// input tables with: s3a (Hadoop's connector, conf/spark-s3a.conf) or s3 (EMR)."""

    def check(self, key: str) -> None:
        for name in ("max_attempts", "s3fs_retries"):
            if getattr(self, name) < 1:
                fail(f"{key}.{name}", f"must be at least 1, got {getattr(self, name)}")
        for name in ("connect_timeout", "read_timeout"):
            if getattr(self, name) <= 0:
                fail(f"{key}.{name}", f"must be a positive number of seconds, got {getattr(self, name)}")


def _convert(value: object, hint: object, key: str) -> object:
    """Turn a YAML value into the field's declared type, or fail naming the key."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if origin in (tuple, list):
        if not isinstance(value, list):
            fail(key, f"must be a list, got {value!r}")
        (item_hint, *_) = typing.get_args(hint) or (str,)
        return tuple(_convert(v, item_hint, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            fail(key, f"must be a mapping, got {value!r}")
        _, value_hint = typing.get_args(hint)
        # Keys are source values (class ids, file names): compared as text, whatever YAML typed them as.
        return {str(k): _convert(v, value_hint, f"{key}.{k}") for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            fail(key, f"must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail(key, f"must be a whole number, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(key, f"must be a number, got {value!r}")
        return float(value)
    if hint is str or origin is Literal:  # a Literal's choices are checked by the section itself
        if isinstance(value, (dict, list)) or value is None:
            fail(key, f"must be a single value, got {value!r}")
        return str(value)
    raise TypeError(f"unsupported config type {hint!r} at {key}")  # a bug in this module, not user input


def _build(cls: type, data: object, key: str):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        fail(key or "config", f"must be a mapping of keys, got {data!r}")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(map(str, data)) - set(names))
    if unknown:
        where = f"{key}.{unknown[0]}" if key else unknown[0]
        fail(where, f"unknown key; allowed here: {', '.join(names)}")
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [n for n in required if n not in data]
    if missing:
        fail(f"{key}.{missing[0]}" if key else missing[0], "is required")
    kwargs = {name: _convert(value, hints[name], f"{key}.{name}" if key else name) for name, value in data.items()}
    return cls(**kwargs)


def parse_typed(cls: type[T], data: object) -> T:
    """A YAML document (already loaded) -> a checked config of type `cls`."""
    return _build(cls, data, "")


def apply_overrides(data: object, overrides: Sequence[str]) -> dict:
    """Apply `key.path=value` overrides (values parsed as YAML) on top of the loaded YAML."""
    data = dict(data or {}) if isinstance(data, dict) or data is None else data
    if not isinstance(data, dict):
        fail("config", f"must be a mapping of keys, got {data!r}")
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
                fail(".".join(parents[: i + 1]), f"is a single value, cannot set {key} inside it")
            else:
                child = node[part] = dict(child)
            node = child
        try:
            node[leaf] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({_yaml_problem(exc)}); "
                              "write a plain value, quoted if it is text") from None
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: its problem and where (PyYAML's own text spans several lines)."""
    problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


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
            raise ConfigError(f"config {path} is not valid YAML: {_yaml_problem(exc)}") from None
        if data is not None and not isinstance(data, dict):
            raise ConfigError(f"config {path}: must be a mapping of keys, got {data!r}")
    data = apply_overrides(data, overrides)  # its errors name the --set item, not the file
    try:
        return parse_typed(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"config {path}: {exc}" if path is not None else str(exc)) from None
