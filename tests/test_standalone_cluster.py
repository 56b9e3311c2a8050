"""The build job submitted to a real standalone cluster (master + 2 workers, separate JVMs and Python
workers, on 127.0.0.1) writes exactly what the local-mode run writes."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from yololake.dataset.versions import current_folder

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"


def _free_port_run(count: int) -> int:
    """A port p such that p .. p+count-1 are all free on 127.0.0.1 now."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count > 65535:
            continue
        try:
            socks = []
            for p in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no run of free ports on 127.0.0.1")


def _package(target: Path) -> Path:
    """yololake/ at the zip root, as scripts/package_for_cluster.sh builds it (not into the shared dist/)."""
    with zipfile.ZipFile(target, "w") as z:
        for path in sorted((ROOT / "lib" / "yololake").rglob("*.py")):
            z.write(path, path.relative_to(ROOT / "lib"))
    return target


def _tree(root: str, sub: str) -> dict[str, bytes | str]:
    """Relative path -> bytes (files) or link target (symlinks) under root/sub."""
    found = {}
    for folder, _, files in os.walk(os.path.join(root, sub)):
        for name in files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            found[rel] = os.readlink(path) if os.path.islink(path) else Path(path).read_bytes()
    return found


def _index_rows(root: str) -> list[tuple]:
    rows = pq.read_table(os.path.join(root, "index")).select(
        ["key", "frame_id", "split", "shard", "source_image", "ext", "width", "height", "box_count", "status"])
    return sorted(tuple(r.values()) for r in rows.to_pylist())


def test_standalone_cluster_writes_what_local_mode_writes(demo_dataset, tmp_path):
    local_out, _, _, lake = demo_dataset
    port = _free_port_run(1)
    ui = _free_port_run(3)
    env = {**os.environ, "SPARK_CLUSTER_DIR": str(tmp_path / "cluster"), "SPARK_CLUSTER_PORT": str(port),
           "SPARK_CLUSTER_UI_PORT": str(ui), "PYSPARK_PYTHON": str(BIN / "python"),
           "PYSPARK_DRIVER_PYTHON": str(BIN / "python")}
    script = str(ROOT / "scripts" / "spark_cluster.sh")
    # A user's submit folder: the config beside them, shipped with --files and named by its base name.
    submit = tmp_path / "submit"
    submit.mkdir()
    shutil.copy(ROOT / "conf" / "demo.yaml", submit / "demo.yaml")
    package = _package(tmp_path / "yololake.zip")
    out = str(tmp_path / "cluster_out")
    started = subprocess.run(["bash", script, "start"], env=env, capture_output=True, text=True, timeout=400)
    try:
        assert started.returncode == 0, started.stderr
        status = subprocess.run(["bash", script, "status"], env=env, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0 and "2 of 2 workers alive" in status.stdout, status.stdout + status.stderr
        job = subprocess.run(
            [str(BIN / "spark-submit"), "--master", f"spark://127.0.0.1:{port}",
             "--conf", "spark.executor.memory=1g", "--conf", "spark.ui.enabled=false",
             "--py-files", str(package), "--files", "demo.yaml", str(ROOT / "jobs" / "build_dataset.py"),
             "--config", "demo.yaml", "--annotations", f"{lake}/annotations", "--frames", f"{lake}/frames",
             "--images", lake, "--out", out],
            cwd=submit, env=env, capture_output=True, text=True, timeout=1200)
        assert job.returncode == 0, job.stderr[-3000:]
        # Both workers ran an executor of the application (so tasks left the driver's JVM).
        for i in (1, 2):
            apps = list((tmp_path / "cluster" / f"worker-{i}").glob("app-*/*/stderr"))
            assert apps, f"worker-{i} ran no executor"
    finally:
        stopped = subprocess.run(["bash", script, "stop"], env=env, capture_output=True, text=True, timeout=120)
    assert stopped.returncode == 0 and "stopped 3 process(es)" in stopped.stdout, stopped.stdout + stopped.stderr

    out = current_folder(out)
    labels, local_labels = _tree(out, "labels"), _tree(local_out, "labels")
    assert labels and labels == local_labels
    assert _tree(out, "images") == _tree(local_out, "images")
    for name in ("train.txt", "val.txt", "test.txt", "shards.json"):
        assert Path(out, name).read_bytes() == Path(local_out, name).read_bytes(), name
    assert _index_rows(out) == _index_rows(local_out)
    stats, local_stats = (json.loads(Path(d, "stats.json").read_text()) for d in (out, local_out))
    for volatile in ("out", "run_id", "wall_seconds", "version"):
        stats.pop(volatile), local_stats.pop(volatile)
    assert stats == local_stats
    assert os.path.exists(os.path.join(out, "_SUCCESS"))
