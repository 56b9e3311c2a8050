#!/usr/bin/env bash
# Create .venv/ at the repo root (if missing) and install yololake into it with the train and dev extras.
# Idempotent: the pip work is skipped while .venv/.yololake-installed matches pyproject.toml and this script.
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
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    exit 0
fi

echo "setup_venv: installing into $VENV (the first run installs about 5.5 GB, torch included)" >&2
rm -f "$STAMP"
"$VENV/bin/python" -m pip install -q "${TORCH_PINS[@]}"
"$VENV/bin/python" -m pip install -q -e ".[train,dev]"
echo "$want" > "$STAMP"
echo "setup_venv: done" >&2
