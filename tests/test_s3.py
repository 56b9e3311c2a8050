"""The job against a real S3 API (moto on 127.0.0.1), directly and through a fault-injecting proxy."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import s3fs
from helpers import published_local, published_s3, s3_version
from s3_server import ACCESS_KEY, SECRET_KEY, Rule
from yololake import output_dir
from yololake.build.config import load_config
from yololake.build.main import run
from yololake.build.plan import JobInputs
from yololake.build.shard_writer import ShardSpec, make_shard_writer, write_shard
from yololake.errors import OutputExistsError, StorageError
from yololake.storage import Store

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def _config(endpoint="", layout="files", max_attempts=4, **output):
    config = load_config(REPO / "conf" / "demo.yaml")
    return dataclasses.replace(
        config,
        images=dataclasses.replace(config.images, mode="copy"),
        report=dataclasses.replace(config.report, enabled=False),
        output=dataclasses.replace(config.output, frames_per_shard=16, layout=layout, **output),
        storage=dataclasses.replace(config.storage, endpoint_url=endpoint, max_attempts=max_attempts))


def _inputs(lake):
    return JobInputs((f"{lake}/annotations",), (f"{lake}/frames",), lake)


def _fs(endpoint):
    return s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})


@pytest.fixture(scope="module")
def local_runs(spark, sample_lake, tmp_path_factory):
    """The same job into local folders, per layout: what the S3 output must equal byte for byte."""
    lake, _ = sample_lake
    runs = {}
    for layout in ("files", "shard_archive"):
        out = str(tmp_path_factory.mktemp(f"local_{layout}") / "out")
        run(spark, _config(layout=layout), _inputs(lake), out)
        runs[layout] = published_local(out)
    return runs


@pytest.mark.parametrize("layout", ["files", "shard_archive"])
def test_s3_output_equals_the_local_output(spark, sample_lake, s3_bucket, local_runs, layout):
    endpoint, bucket = s3_bucket
    lake, _ = sample_lake
    summary = run(spark, _config(endpoint, layout), _inputs(lake), f"s3://{bucket}/ds/{layout}")
    fs = _fs(endpoint)
    version = s3_version(fs, f"{bucket}/ds/{layout}")
    assert fs.exists(f"{version}/_SUCCESS") and version.endswith(summary["version"])
    assert published_s3(fs, f"{bucket}/ds/{layout}") == local_runs[layout]
    assert summary["out"] == f"s3://{version}"
    objects = len(fs.find(version))
    print(f"\n{layout}: {objects} objects for {summary['frames_written']} frames")
    if layout == "shard_archive":  # an object per shard, not per frame
        assert not any(p.endswith(".txt") for p in fs.find(f"{version}/labels"))


def test_partial_then_retried_shards_on_s3_publish_what_a_clean_run_does(spark, sample_lake, s3_bucket,
                                                                           local_runs):
    endpoint, bucket = s3_bucket
    lake, _ = sample_lake

    def flaky_writer(spec):
        real = make_shard_writer(spec)

        def writer(frames: pd.DataFrame) -> pd.DataFrame:
            from pyspark import TaskContext

            if TaskContext.get().attemptNumber() == 0:
                real(frames.iloc[: len(frames) // 2])  # part of the shard is published ...
                raise RuntimeError("executor lost")    # ... then the attempt dies
            return real(frames)
        return writer

    run(spark, _config(endpoint), _inputs(lake), f"s3://{bucket}/retry", shard_writer=flaky_writer)
    assert published_s3(_fs(endpoint), f"{bucket}/retry") == local_runs["files"]


def test_a_late_duplicate_attempt_changes_nothing(s3_bucket, sample_lake):
    endpoint, bucket = s3_bucket
    lake, _ = sample_lake
    frames = pd.DataFrame({
        "split": ["val"] * 2, "shard": ["00003"] * 2, "key": ["k2", "k1"], "ext": ["jpg"] * 2,
        "image_uri": [f"{lake}/images/v01/v01_000{i}.jpg" for i in range(2)],
        "labels": ["0 0.5 0.5 0.1 0.1", ""], "box_count": [1, 0], "frame_id": ["k2", "k1"],
        "width": [128] * 2, "height": [96] * 2, "status": ["labeled", "background"],
    })
    for layout in ("files", "shard_archive"):
        spec = ShardSpec(Store(f"s3://{bucket}/dup/{layout}", _config(endpoint).storage), "copy", layout)
        first = write_shard(frames, spec)
        before = published_s3(_fs(endpoint), f"{bucket}/dup/{layout}")
        second = write_shard(frames.iloc[::-1], spec)  # the loser, finishing late
        assert first.equals(second) and first["error"].isna().all()
        assert published_s3(_fs(endpoint), f"{bucket}/dup/{layout}") == before


def test_driver_failure_before_commit_then_rerun(spark, sample_lake, s3_bucket, local_runs, monkeypatch):
    endpoint, bucket = s3_bucket
    lake, _ = sample_lake
    out = f"s3://{bucket}/crash"

    def crash(store, summary):
        raise SystemError("driver lost before commit")

    with monkeypatch.context() as m:
        m.setattr(output_dir, "commit", crash)
        with pytest.raises(SystemError):
            run(spark, _config(endpoint), _inputs(lake), out)
    fs = _fs(endpoint)
    assert not fs.exists(f"{bucket}/crash/dataset.yaml")  # no pointer: nothing became current
    assert not any(p.endswith("/_SUCCESS") for p in fs.find(f"{bucket}/crash"))
    run(spark, _config(endpoint), _inputs(lake), out)
    assert published_s3(fs, f"{bucket}/crash") == local_runs["files"]


def test_two_concurrent_commits_exactly_one_wins(s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    for store in (Store(f"s3://{bucket}/race", _config(endpoint).storage), Store(str(tmp_path), _config().storage)):
        results, barrier = [], threading.Barrier(2)

        def commit(n):
            barrier.wait()
            try:
                output_dir.commit(store, {"run": n})
                results.append("won")
            except OutputExistsError as exc:
                results.append(str(exc))

        threads = [threading.Thread(target=commit, args=(n,)) for n in range(2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert sorted(results)[-1] == "won" and sorted(results)[0].startswith("another run committed --out")


def test_transient_faults_succeed_within_the_retry_bound(spark, sample_lake, s3_bucket, fault_proxy, local_runs):
    _, bucket = s3_bucket
    lake, _ = sample_lake
    fault_proxy.reset_counts()
    run(spark, _config(fault_proxy.endpoint), _inputs(lake), f"s3://{bucket}/clean")
    clean_requests = fault_proxy.requests

    faults = [Rule("503", "PUT", r"/labels/", times=4), Rule("500", "PUT", r"/images/", times=3),
              Rule("reset", "PUT", r"/index/", times=2), Rule("503", "GET", r".*", times=2)]
    fault_proxy.reset_counts(faults)
    run(spark, _config(fault_proxy.endpoint), _inputs(lake), f"s3://{bucket}/faulty")
    assert fault_proxy.faults == 11
    # Each injected fault costs one more request, nothing else: the retries are bounded, not stacked.
    assert clean_requests < fault_proxy.requests <= clean_requests + fault_proxy.faults + 2
    assert published_s3(_fs(s3_bucket[0]), f"{bucket}/faulty") == local_runs["files"]


@pytest.mark.parametrize("fault, code", [("500", "internal error"), ("403", "Access Denied")])
def test_persistent_errors_fail_fast_naming_the_key(spark, sample_lake, s3_bucket, fault_proxy, fault, code):
    _, bucket = s3_bucket
    lake, _ = sample_lake
    fault_proxy.reset_counts([Rule(fault, "PUT", r"/labels/")])
    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        run(spark, _config(fault_proxy.endpoint, max_attempts=3), _inputs(lake), f"s3://{bucket}/broken")
    elapsed = time.monotonic() - started
    message = str(info.value)
    print(f"\npersistent {fault}: failed after {elapsed:.1f}s, {fault_proxy.requests} requests: {message}")
    assert message.startswith(f"cannot write objects under s3://{bucket}/broken/versions/v")
    assert "/labels/" in message.split(":")[1]
    assert code in message and "nothing was committed" in message
    # The first shard to fail stops the others (at most one in flight per core), instead of each shard
    # paying the client's retries again; and Spark does not retry the tasks on top.
    failed = int(message.rsplit(" shard(s) failed", 1)[0].rsplit("(", 1)[1])
    assert 1 <= failed <= 3, message
    assert elapsed < 120, elapsed
    assert not any(p.endswith("/_SUCCESS") for p in _fs(s3_bucket[0]).find(f"{bucket}/broken"))


def test_secrets_never_appear_in_logs_or_outputs(sample_lake, s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    lake, _ = sample_lake
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": endpoint, "PYSPARK_PYTHON": sys.executable, "YOLOLAKE_DEBUG": ""}
    args = [sys.executable, "-m", "yololake", "build-dataset", "--config", str(REPO / "conf" / "demo.yaml"),
            "--annotations", f"{lake}/annotations", "--frames", f"{lake}/frames", "--images", lake,
            "--out", f"s3://{bucket}/secret", "--set", "images.mode=copy", "--master", "local[2]"]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    # A failing run too: its error path must not leak either.
    failing = subprocess.run(args[:-6] + ["--out", "s3://no-such-bucket/x", "--set", "images.mode=copy",
                                          "--master", "local[2]"],
                             env=env, capture_output=True, text=True, timeout=300)
    last = failing.stderr.strip().splitlines()[-1]
    assert failing.returncode == 2 and last.startswith("build_dataset: error: cannot "), last
    fs = _fs(endpoint)
    outputs = b"".join(fs.cat_file(p) for p in fs.find(f"{bucket}/secret"))
    for secret in (ACCESS_KEY, SECRET_KEY):
        for text in (done.stdout, done.stderr, failing.stdout, failing.stderr):
            assert secret not in text
        assert secret.encode() not in outputs


def test_the_report_is_rendered_into_an_s3_version(spark, sample_lake, s3_bucket):
    endpoint, bucket = s3_bucket
    lake, planted = sample_lake
    config = _config(endpoint)
    config = dataclasses.replace(config, report=dataclasses.replace(config.report, enabled=True, preview_frames=4))
    summary = run(spark, config, _inputs(lake), f"s3://{bucket}/reported")
    fs = _fs(endpoint)
    report = f"{s3_version(fs, f'{bucket}/reported')}/report"
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.find(report))
    assert names == sorted(["class_histogram.png", "label_heatmaps.png", "boxes_per_frame.png",
                            "quarantine_reasons.png", "index.html", *[f"preview_{s}.png" for s in summary["by_split"]]])
    assert all(fs.size(f"{report}/{name}") > 1000 for name in names)
    html = fs.cat_file(f"{report}/index.html").decode()
    assert f"<td>boxes_written</td><td>{summary['boxes_written']}</td>" in html
    for reason, count in planted["quarantined_by_reason"].items():
        assert f"<td>{reason}</td><td>{count}</td>" in html
