"""What every job's `main` shares: quiet logging with our progress lines, and one clear line per failure."""
from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable

from yololake.config import ConfigError


def progress(log: logging.Logger, stage: str, started: float) -> None:
    log.info("%-28s done after %.1fs", stage, time.monotonic() - started)


def run_job(prog: str, body: Callable[[], str], user_errors: tuple[type[BaseException], ...]) -> int:
    """Run `body` (returns the summary to print); exit 0, 2 for a config error, 1 for any other failure.

    A user error prints its own message; anything else prints its type and first line, and the traceback
    only with YOLOLAKE_DEBUG set.
    """
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("yololake").setLevel(logging.INFO)  # our progress lines; py4j and others stay quiet
    try:
        summary = body()
    except (ConfigError, *user_errors) as exc:
        print(f"{prog}: error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except Exception as exc:
        if os.environ.get("YOLOLAKE_DEBUG"):
            raise
        text = str(exc).strip()
        print(f"{prog}: error: {type(exc).__name__}: {text.splitlines()[0] if text else ''}"
              " (set YOLOLAKE_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    print(summary)
    return 0
