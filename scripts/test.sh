#!/usr/bin/env bash
# Set up .venv/ and run the whole test suite; extra arguments go to pytest (e.g. -k config, -x).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_venv.sh"
cd "$ROOT"
# Spark's Python workers must run the venv interpreter, where yololake is installed.
export PYSPARK_PYTHON="$PWD/.venv/bin/python"
exec "$PWD/.venv/bin/python" -m pytest -q "$@"
