"""Logging for every command: our progress lines at INFO on stderr, everything else (py4j, Spark) at WARNING."""
from __future__ import annotations

import logging
import sys
import time


def setup_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("yololake").setLevel(logging.INFO)


def progress(log: logging.Logger, stage: str, started: float) -> None:
    log.info("%-28s done after %.1fs", stage, time.monotonic() - started)
