"""The `yololake` console script: one typed table of commands, and the one error path every command takes.

Every command's `main(argv) -> int` (also called by the spark-submit shims in jobs/) runs its work through
`run_command`: a `YololakeError` (config, usage, input, storage, output exists, threshold, dataset,
preflight) exits 2 with one line naming the value and the fix, and so does a full disk (the fix: free space);
anything else is a bug or an outage and exits 1 with its traceback in the log.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from yololake.errors import YololakeError
from yololake.logs import setup_logging

log = logging.getLogger("yololake")


@dataclass(frozen=True)
class Command:
    module: str
    """The module whose `main(argv) -> int` runs the command."""
    summary: str


COMMANDS: dict[str, Command] = {
    "build-dataset": Command("yololake.build.main", "annotations (+ frame manifest) -> YOLOv5 dataset (local Spark)"),
    "report": Command("yololake.report.main", "charts and preview mosaics of a built dataset into OUT/report/"),
    "extract-frames": Command("yololake.video.main", "videos -> sampled JPEG frames + frame manifest (local Spark)"),
    "jvm-archive": Command("yololake.jvm_archive",
                           "create the JVM class archive that starts local Spark faster; print its java options"),
    "sample-lake": Command("yololake.samples.lake", "generate a small sample data lake for demos and tests"),
    "versions": Command("yololake.dataset.versions_command",
                        "list a dataset's versions (which is current); --keep N removes old ones"),
    "train": Command("yololake.train.main",
                     "stage a dataset, prebuild YOLOv5's label cache, preflight, run YOLOv5 (torchrun)"),
    "detect": Command("yololake.train.detect", "YOLOv5 detect.py with trained weights on images or a folder (offline)"),
    "val": Command("yololake.train.val", "YOLOv5 val.py with trained weights on a yololake dataset (offline)"),
}

def add_job_flags(p: argparse.ArgumentParser, set_example: str) -> None:
    """The flags every Spark job takes after its own: --set KEY=VALUE, --master."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override a config value, e.g. --set {set_example}")
    p.add_argument("--master", help="Spark master for in-process runs (spark-submit sets its own)")


EXIT_USER_ERROR = 2
EXIT_BUG = 1
_FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


def run_command(prog: str, body: Callable[[], int]) -> int:
    """Run a command's work and map what it raises to the exit code (see the module docstring)."""
    setup_logging()
    try:
        return body()
    except YololakeError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        return 130
    except OSError as exc:
        if exc.errno not in _FULL_DISK:
            return _bug(prog, exc)
        where = f" writing {exc.filename}" if exc.filename else ""
        print(f"{prog}: error: {exc.strerror}{where}; free space (or raise the quota) and run again",
              file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
    except Exception as exc:  # noqa: BLE001 - the one place an unexpected error becomes an exit code
        return _bug(prog, exc)


def _bug(prog: str, exc: Exception) -> int:
    log.exception("%s failed", prog)
    text = str(exc).strip()
    print(f"{prog}: error: {type(exc).__name__}: {text.splitlines()[0] if text else ''} "
          "(a bug or an outage: the traceback is above)", file=sys.stderr, flush=True)
    return EXIT_BUG


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: yololake COMMAND [ARGS]\n\ncommands:")
        for name, command in COMMANDS.items():
            print(f"  {name:15s} {command.summary}")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    return importlib.import_module(COMMANDS[argv[0]].module).main(argv[1:])
