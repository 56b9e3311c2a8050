"""Versioned outputs: a killed rebuild (SIGKILL at several points) never touches the current version or the
pointer, two real concurrent runs both commit, the pointer swap is conditional on S3, `yololake versions`."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import files_and_mtimes, s3_version
from yololake.build.config import load_config
from yololake.build.main import run
from yololake.build.plan import JobInputs
from yololake.config import StorageConfig
from yololake.dataset import layout as L
from yololake.dataset.versions import VersionedOutput
from yololake.dataset.versions_command import main as versions_main
from yololake.storage import Store

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf" / "demo.yaml"


def _snapshot(root: str) -> dict:
    """Every file under root (bytes, mtime); YOLOv5's own .cache files left out."""
    return files_and_mtimes(root, skip_suffix=".cache")


def _settled(root: str, quiet: float = 1.5, timeout: float = 120) -> dict:
    """The snapshot once nothing changed for `quiet` seconds: the killed driver's Python workers run in their own
    process group and may finish the file they were writing before they notice the JVM is gone."""
    deadline, last = time.monotonic() + timeout, _snapshot(root)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = _snapshot(root)
        if now == last:
            return now
        last = now
    raise AssertionError(f"files under {root} kept changing for {timeout} s after the kill")


def _command(lake: str, out: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "yololake", "build-dataset", "--config", str(CONF), "--master", "local[2]",
            "--annotations", f"{lake}/annotations", "--frames", f"{lake}/frames", "--images", lake, "--out", out,
            "--set", "report.enabled=false", "--set", "output.frames_per_shard=8", *extra]


def _env() -> dict:
    return {**os.environ, "PYSPARK_PYTHON": sys.executable}


def _kill_when(cmd: list[str], ready, timeout: float = 300) -> None:
    """Start the build in its own process group and SIGKILL the whole group (driver, JVM, Python workers)
    as soon as `ready()` is true: a machine that dies at that point."""
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert proc.poll() is None, f"the build ended before the kill point: {proc.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "the kill point never came"
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _unfinished(out: str, current: str) -> list[str]:
    folder = os.path.join(out, L.VERSIONS)
    return [os.path.join(folder, v) for v in os.listdir(folder) if v != current] if os.path.isdir(folder) else []


def _has(name: str, out: str, current: str):
    """A kill point: `name` exists in a version folder that the run being killed created."""
    earlier = set(_unfinished(out, current))
    return lambda: any(os.path.exists(os.path.join(v, name)) for v in _unfinished(out, current) if v not in earlier)


def _loads_in_yolov5(yaml_path: str, expected_frames: int) -> None:
    """The real YOLOv5 loader reads the dataset the pointer names (in a subprocess: its own config dir)."""
    code = ("import sys; from yolov5.utils import dataloaders, general; "
            "d = general.check_dataset(sys.argv[1], autodownload=False); "
            "n = sum(len(dataloaders.LoadImagesAndLabels(d[s], img_size=64, batch_size=2, stride=32).im_files) "
            "for s in ('train', 'val', 'test') if d.get(s)); print(n)")
    env = {**_env(), "YOLOV5_CONFIG_DIR": os.path.join(os.path.dirname(yaml_path), "..", "yolov5_config")}
    font = Path(env["YOLOV5_CONFIG_DIR"]) / "Arial.ttf"
    if not font.exists():
        import matplotlib

        font.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf", "DejaVuSans.ttf"),
                    font)
    done = subprocess.run([sys.executable, "-c", code, yaml_path], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.strip().splitlines()[-1]) == expected_frames


def test_a_rebuild_killed_at_any_point_leaves_the_current_version_and_the_pointer(spark, sample_lake, tmp_path):
    lake, _ = sample_lake
    out = str(tmp_path / "ds" / "out")
    config = load_config(CONF, ["report.enabled=false", "output.frames_per_shard=8"])
    first = run(spark, config, JobInputs((f"{lake}/annotations",), (f"{lake}/frames",), lake), out)
    current = first["version"]
    before = _snapshot(out)
    kill_points = {  # each made when its run starts: it watches only the folder that run creates
        "during validation": lambda: _has(L.RUN_MARKER, out, current),  # claimed, the plan is being validated
        "during shard writing": lambda: _has(L.LABELS, out, current),   # the first shard is published
        "after the last shard, before the pointer": lambda: _has(L.STATS_JSON, out, current),
    }
    for point, predicate in kill_points.items():
        # The report (on in these runs) is rendered after stats.json and before the commit: seconds of Spark
        # and matplotlib, so the last kill point lands before the pointer moves even on an idle machine.
        _kill_when(_command(lake, out, "--force", "--set", "report.enabled=true"), predicate())
        after = _settled(out)
        unfinished = tuple(_unfinished(out, current))
        assert {p: v for p, v in after.items() if not p.startswith(unfinished)} == before, point  # only its own
        assert f"yololake_version: {current}" in Path(out, "dataset.yaml").read_text(), point
    # Each killed run removed the leftover of the one before (its writer was gone); the last one is left.
    (leftover,) = _unfinished(out, current)
    assert not os.path.exists(os.path.join(leftover, L.SUCCESS))
    _loads_in_yolov5(os.path.join(out, "dataset.yaml"), first["frames_written"])

    done = subprocess.run(_command(lake, out, "--force"), env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    versions = sorted(os.listdir(os.path.join(out, L.VERSIONS)))
    assert len(versions) == 2 and versions[0] == current  # the leftovers are gone, the old version stays
    assert f"yololake_version: {versions[1]}" in Path(out, "dataset.yaml").read_text()
    assert {p: v for p, v in _snapshot(out).items() if current in p} == {
        p: v for p, v in before.items() if current in p}
    _loads_in_yolov5(os.path.join(out, "dataset.yaml"), first["frames_written"])


def test_two_concurrent_runs_with_different_inputs_both_commit(sample_lake, tmp_path):
    lake, _ = sample_lake
    out = str(tmp_path / "out")
    runs = []
    for drive in ("day1", "day2"):
        cmd = _command(lake, out, "--set", "quarantine.max_fraction=0.5")
        cmd[cmd.index("--annotations") + 1] = f"{lake}/annotations/drive={drive}"
        runs.append(subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [p.communicate(timeout=900) for p in runs]
    for proc, (stdout, stderr) in zip(runs, results):
        assert proc.returncode == 0, stderr[-3000:]
    versions = sorted(os.listdir(os.path.join(out, L.VERSIONS)))
    assert len(versions) == 2
    output = VersionedOutput(Store(out, StorageConfig()))
    frames = {}
    for version_id in versions:
        success = output.version(version_id).success
        assert success is not None  # both committed
        frames[version_id] = success["frames"]
        annotations = success["fingerprint"]["inputs"]["annotations"][0]
        stats = Path(out, L.VERSIONS, version_id, "stats.json").read_text()
        assert f'"version": "{version_id}"' in stats and annotations.endswith(("day1", "day2"))
    assert {output.version(v).success["fingerprint"]["inputs"]["annotations"][0][-4:] for v in versions} == {
        "day1", "day2"}  # each version holds its own inputs: neither overwrote the other
    current = output.current_id()
    assert current in versions
    _loads_in_yolov5(os.path.join(out, "dataset.yaml"), frames[current])


def test_the_pointer_swap_on_s3_is_conditional(s3_bucket, monkeypatch):
    endpoint, bucket = s3_bucket
    output = VersionedOutput(Store(f"s3://{bucket}/ptr", StorageConfig(endpoint_url=endpoint)))
    output.open()
    fs = output.store.fs  # fsspec caches file systems: point_to gets this very instance
    seen, real = [], fs.pipe_file

    def recording(path, data, **kwargs):
        seen.append(sorted(k for k in kwargs if k.startswith("If")))
        return real(path, data, **kwargs)

    monkeypatch.setattr(fs, "pipe_file", recording)
    output.point_to("v1", b"yololake_version: v1\n")
    assert seen == [["IfNoneMatch"]]  # create-only when there is no pointer yet
    barrier, errors = threading.Barrier(4), []

    def swap(n):
        barrier.wait()
        try:
            output.point_to(f"v{n}", f"yololake_version: v{n}\n".encode())
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=swap, args=(n,)) for n in range(2, 6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []  # every swap succeeded, conflicts were retried
    assert all(kinds == ["IfMatch"] for kinds in seen[1:]) and len(seen) >= 5
    assert output.current_id() in {f"v{n}" for n in range(2, 6)}


def test_versions_lists_and_keeps_the_newest(spark, sample_lake, s3_bucket, tmp_path, capsys):
    endpoint, bucket = s3_bucket
    lake, _ = sample_lake
    out = f"s3://{bucket}/hist"
    config = load_config(CONF, ["report.enabled=false", "images.mode=none", f"storage.endpoint_url={endpoint}"])
    inputs = JobInputs((f"{lake}/annotations",), (f"{lake}/frames",), lake)
    ids = [run(spark, config, inputs, out, force=True)["version"] for _ in range(3)]
    fs = Store(out, config.storage).fs
    assert s3_version(fs, f"{bucket}/hist") == f"{bucket}/hist/versions/{ids[-1]}"
    os.environ["AWS_ENDPOINT_URL_S3"] = endpoint
    try:
        assert versions_main([out]) == 0
        listing = capsys.readouterr().out.splitlines()
        assert [line[2:].split()[0] for line in listing[:3]] == ids and listing[2].startswith("* ")
        assert listing[3].startswith(f"current: {ids[-1]}")
        assert versions_main([out, "--keep", "1"]) == 0
        assert f"removed 2 version(s): {ids[0]}, {ids[1]}" in capsys.readouterr().out
    finally:
        del os.environ["AWS_ENDPOINT_URL_S3"]
    fs.invalidate_cache()
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"{bucket}/hist/versions")) == [ids[-1]]
