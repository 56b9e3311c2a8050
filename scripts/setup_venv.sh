#!/usr/bin/env bash
# Create .venv/ at the repo root (if missing) and install yololake into it with the train and dev extras.
# Idempotent: the pip work is skipped while .venv/.yololake-installed matches pyproject.toml and this script.
# Then it makes the JVM class archive for local Spark runs if it is missing (yololake jvm-archive).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.yololake-installed"
# torch/torchvision come from this machine's disk; installing them first keeps pip from choosing other builds.
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)

cd "$ROOT"
if [[ ! -x "$VENV/bin/python" ]]; then
    echo "setup_venv: creating $VENV" >&2
    python3 -m venv "$VENV"
fi

want="$(cat pyproject.toml "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$want" ]]; then
    echo "setup_venv: installing into $VENV (the first run installs about 5.5 GB, torch included)" >&2
    rm -f "$STAMP"
    "$VENV/bin/python" -m pip install -q "${TORCH_PINS[@]}"
    "$VENV/bin/python" -m pip install -q -e ".[train,dev]"
    echo "$want" > "$STAMP"
    echo "setup_venv: done" >&2
fi
# Once per JVM and Spark install (seconds when it exists): the class archive that starts every later local
# Spark run faster (lib/yololake/jvm_archive.py). Only a speed-up: a failure here is reported, never fatal.
"$VENV/bin/yololake" jvm-archive >/dev/null || echo "setup_venv: no JVM class archive (local Spark starts slower)" >&2
