"""The problems a user can fix. Every command turns them into exit 2 and one line (`yololake.cli.run_command`).

Each message names the value, the rule it broke and the fix. Anything that is not a `YololakeError` is a
bug or an outage: it exits 1 with its traceback in the log.
"""
from __future__ import annotations


class YololakeError(Exception):
    """A problem with the user's input, config, storage or environment; the message is shown as is."""


class ConfigError(YololakeError, ValueError):
    """A bad config key or value (conf/*.yaml, --set), or two settings that cannot go together."""


class UsageError(YololakeError, ValueError):
    """A bad command-line flag or flag combination."""


class InputError(YololakeError, ValueError):
    """An input path or table that cannot be read as configured."""


class StorageError(YololakeError, RuntimeError):
    """A storage call failed after its retries; the message names the object, never a credential."""


class OutputExistsError(YololakeError, RuntimeError):
    """--out already holds a dataset, or something that is not ours."""


class QuarantineThresholdError(YololakeError, RuntimeError):
    """Too many rows were rejected; nothing was committed."""


class DatasetError(YololakeError, RuntimeError):
    """A dataset that cannot be used as is (not committed, unreadable manifest, a staged copy that differs)."""


class PreflightError(YololakeError, RuntimeError):
    """A check before training failed (GPUs, disk, the distributed check)."""
