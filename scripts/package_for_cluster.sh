#!/usr/bin/env bash
# Build what spark-submit needs on a cluster:
#   dist/yololake.zip   the yololake package (yololake/ at the zip root), for --py-files
#   dist/pyenv.tar.gz   a venv-pack archive of the job's third-party packages, for --archives ...#environment
#                       (only when venv-pack is importable; it is not a dependency of yololake)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
[[ -x "$PY" ]] || PY="$(command -v python3)"
mkdir -p dist

"$PY" - <<'PYEOF'
import os
import zipfile

src = os.path.join("lib", "yololake")
if not os.path.isfile(os.path.join(src, "__init__.py")):
    raise SystemExit(f"package_for_cluster: {src}/__init__.py not found")
out = os.path.join("dist", "yololake.zip")
tmp = out + ".tmp"
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
    for folder, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(folder, name)
            z.write(path, os.path.relpath(path, "lib"))
os.replace(tmp, out)
print(f"{out}: {len(zipfile.ZipFile(out).namelist())} files (--py-files)")
PYEOF

if ! "$PY" -c "import venv_pack" 2>/dev/null; then
    echo "dist/pyenv.tar.gz: skipped, venv-pack is not installed. Install it with" \
         "'$PY -m pip install venv-pack' and rerun, or install the job's packages on the cluster image." >&2
    exit 0
fi

# A slim environment with only what the job imports on executors: the dependencies in pyproject.toml
# minus pyspark (the cluster's Spark provides it) and torch (training only). Not .venv itself: it holds
# torch (gigabytes) and an editable install, which venv-pack cannot pack.
ENV="$ROOT/build/pyenv"
rm -rf "$ENV"
python3 -m venv "$ENV"
deps_text="$("$PY" - <<'PYEOF'
import re
import tomllib

with open("pyproject.toml", "rb") as f:
    deps = tomllib.load(f)["project"]["dependencies"]
for dep in deps:
    if re.split(r"[\s<>=!~\[;]", dep, maxsplit=1)[0].lower() not in ("pyspark", "torch"):
        print(dep)
PYEOF
)"
mapfile -t deps <<< "$deps_text"
echo "build/pyenv: installing ${deps[*]}" >&2
"$ENV/bin/python" -m pip install -q "${deps[@]}"
"$PY" -c "import venv_pack; venv_pack.pack(prefix='$ENV', output='dist/pyenv.tar.gz', force=True)"
echo "dist/pyenv.tar.gz: $(du -h dist/pyenv.tar.gz | cut -f1) (--archives dist/pyenv.tar.gz#environment)"
