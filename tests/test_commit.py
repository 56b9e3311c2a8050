"""Commit behaviour: task retries (real local[2,4] retries), duplicate attempts, failed runs, reruns."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pandas as pd
import pytest
from helpers import files_and_mtimes, published_local
from yololake.build.config import load_config
from yololake.build.main import main, run
from yololake.build.plan import JobInputs
from yololake.build.shard_writer import ShardSpec, make_shard_writer, write_shard
from yololake.config import StorageConfig
from yololake.errors import OutputExistsError, QuarantineThresholdError
from yololake.storage import Store

pytestmark = pytest.mark.slow
CONF = Path(__file__).resolve().parents[1] / "conf" / "demo.yaml"


def _config(frames_per_shard=8, **quarantine):
    config = load_config(CONF)
    return dataclasses.replace(
        config, output=dataclasses.replace(config.output, frames_per_shard=frames_per_shard),
        report=dataclasses.replace(config.report, enabled=False),
        quarantine=dataclasses.replace(config.quarantine, **quarantine))


def _inputs(lake):
    return JobInputs((f"{lake}/annotations",), (f"{lake}/frames",), lake)


@pytest.fixture(scope="module")
def clean_run(spark, sample_lake, tmp_path_factory):
    lake, _ = sample_lake
    out = str(tmp_path_factory.mktemp("clean") / "out")
    summary = run(spark, _config(), _inputs(lake), out)
    return out, summary


def test_failed_first_attempts_are_retried_into_identical_output(spark, sample_lake, clean_run, tmp_path):
    """Every shard's first attempt publishes half the shard, then dies mid-write; Spark retries it."""
    lake, _ = sample_lake
    clean_out, clean_summary = clean_run
    attempts_log = tmp_path / "attempts"
    attempts_log.mkdir()

    def flaky_writer(spec):
        real = make_shard_writer(spec)

        def writer(frames: pd.DataFrame) -> pd.DataFrame:
            from pyspark import TaskContext

            attempt = TaskContext.get().attemptNumber()
            shard = f"{frames['split'].iloc[0]}-{frames['shard'].iloc[0]}"
            (attempts_log / f"{shard}.{attempt}").touch()
            if attempt == 0:
                real(frames.iloc[: len(frames) // 2])          # a partial shard, published
                broken = frames.copy()
                broken.iloc[-1, broken.columns.get_loc("key")] = "../escape"
                real(broken)                                    # dies after writing part of its files
            return real(frames)
        return writer

    out = str(tmp_path / "out")
    summary = run(spark, _config(), _inputs(lake), out, shard_writer=flaky_writer)
    first = {p.name for p in attempts_log.iterdir() if p.suffix == ".0"}
    retried = {p.name for p in attempts_log.iterdir() if p.suffix == ".1"}
    # Each task's first attempt died on its first shard; the retry wrote all of its shards.
    assert len(first) >= 3
    assert {n[:-2] for n in first} <= {n[:-2] for n in retried}
    assert len(retried) == sum(s["shards"] for s in clean_summary["by_split"].values())
    assert summary["boxes_written"] == clean_summary["boxes_written"]
    assert published_local(out) == published_local(clean_out)
    assert not any(name.startswith(".") and not name.endswith(".crc")
                   for _, dirs, files in os.walk(out) for name in dirs + files)
    assert not (tmp_path / "escape.txt").exists()


def test_a_duplicate_late_attempt_leaves_one_identical_copy(tmp_path, sample_lake):
    lake, _ = sample_lake
    frames = pd.DataFrame({
        "split": ["train"] * 3, "shard": ["00007"] * 3, "key": ["b", "a", "c"], "ext": ["jpg"] * 3,
        "image_uri": [f"{lake}/images/v00/v00_000{i}.jpg" for i in range(3)],
        "labels": ["0 0.5 0.5 0.1 0.1", "", "1 0.2 0.2 0.1 0.1\n2 0.3 0.3 0.1 0.1"], "box_count": [1, 0, 2],
        "frame_id": ["b", "a", "c"], "width": [96] * 3, "height": [64] * 3, "status": ["labeled"] * 3,
    })
    spec = ShardSpec(Store(str(tmp_path), StorageConfig()), "link")
    first = write_shard(frames, spec)
    snapshot = published_local(str(tmp_path))
    second = write_shard(frames.sample(frac=1, random_state=1), spec)  # the late duplicate
    assert first.equals(second)
    assert published_local(str(tmp_path)) == snapshot
    assert sorted(os.listdir(tmp_path / "labels" / "train")) == ["00007"]
    assert sorted(os.listdir(tmp_path / "labels" / "train" / "00007")) == ["a.txt", "b.txt", "c.txt"]
    assert (tmp_path / "_lists" / "train" / "00007.txt").read_text() == (
        "./images/train/00007/a.jpg\n./images/train/00007/b.jpg\n./images/train/00007/c.jpg\n")
    assert first.iloc[0].to_dict() | {"sha256": ""} == {
        "split": "train", "shard": "00007", "frames": 3, "boxes": 3, "background": 1,
        "label_bytes": len("0 0.5 0.5 0.1 0.1\n1 0.2 0.2 0.1 0.1\n2 0.3 0.3 0.1 0.1\n"), "sha256": "",
        "object": "labels/train/00007/", "object_bytes": None, "object_sha256": None, "error": None,
        "classes": '{"0": 1, "1": 1, "2": 1}'}


def test_a_failed_run_commits_nothing_and_a_rerun_completes(spark, sample_lake, clean_run, tmp_path):
    lake, _ = sample_lake

    def always_failing(spec):
        def writer(frames):
            raise OSError("disk on fire")
        return writer

    out = str(tmp_path / "out")
    with pytest.raises(Exception, match="disk on fire"):
        run(spark, _config(), _inputs(lake), out, shard_writer=always_failing)
    assert not os.path.exists(os.path.join(out, "dataset.yaml"))  # no pointer: nothing is current
    (failed,) = os.listdir(os.path.join(out, "versions"))
    assert not any(os.path.exists(os.path.join(out, "versions", failed, name))
                   for name in ("_SUCCESS", "dataset.yaml", "train.txt", "val.txt", "stats.json"))
    assert "disk on fire" in Path(out, "versions", failed, "_FAILED").read_text()
    summary = run(spark, _config(), _inputs(lake), out)  # no flag needed: the failed run was ours
    assert os.listdir(os.path.join(out, "versions")) == [summary["version"]]  # the failed version was removed
    assert os.path.exists(os.path.join(out, "versions", summary["version"], "_SUCCESS"))
    assert published_local(out) == published_local(clean_run[0])



def test_an_unchanged_rerun_is_a_no_op_and_force_adds_a_version(spark, sample_lake, tmp_path, capsys, monkeypatch):
    import yololake.build.main as job

    lake, _ = sample_lake
    out = str(tmp_path / "out")
    first = run(spark, _config(), _inputs(lake), out)
    before = files_and_mtimes(out)
    args = ["--config", str(CONF), "--annotations", f"{lake}/annotations", "--frames", f"{lake}/frames",
            "--images", lake, "--out", out, "--set", "output.frames_per_shard=8", "--set", "report.enabled=false"]

    def no_spark(*_, **__):
        raise AssertionError("an unchanged rerun must not start Spark")

    with monkeypatch.context() as m:
        m.setattr(job, "start_spark", no_spark)
        assert main(args) == 0
    assert capsys.readouterr().out.startswith(f"up to date: version {first['version']} (")
    assert files_and_mtimes(out) == before  # nothing touched, not even a marker
    assert main(args + ["--force"]) == 0
    versions = sorted(os.listdir(os.path.join(out, "versions")))
    assert len(versions) == 2 and versions[0] == first["version"]
    old = os.path.join(out, "versions", first["version"])
    assert {p: v for p, v in files_and_mtimes(out).items() if p.startswith(old)} == {
        p: v for p, v in before.items() if p.startswith(old)}  # the previous version is byte-identical
    pointer = Path(out, "dataset.yaml").read_text()
    assert f"yololake_version: {versions[1]}" in pointer
    assert pointer == Path(out, "versions", versions[1], "dataset.yaml").read_text()
    assert published_local(out) == published_local(old)  # same inputs and config: the same dataset


def test_a_folder_yololake_did_not_write_is_never_touched(spark, sample_lake, tmp_path):
    lake, _ = sample_lake
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(OutputExistsError, match="is not empty and was not written by yololake"):
        run(spark, _config(), _inputs(lake), str(foreign), force=True)
    assert os.listdir(foreign) == ["thesis.tex"]


def test_too_much_quarantine_fails_with_one_line_and_commits_nothing(spark, sample_lake, tmp_path, capsys):
    lake, planted = sample_lake
    out = tmp_path / "out"
    args = ["--config", str(CONF), "--annotations", f"{lake}/annotations", "--frames", f"{lake}/frames",
            "--images", lake, "--out", str(out), "--set", "quarantine.max_fraction=0.01"]
    assert main(args) == 2  # a domain error: exit 2 (issue 10)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    bad = sum(planted["quarantined_by_reason"].values())
    assert line.startswith(f"build_dataset: error: {bad} of {planted['rows']} annotation rows ")
    assert "above quarantine.max_fraction 1.0%; nothing was committed" in line
    assert sorted(p.name for p in out.iterdir()) == ["_yololake_output.json", "versions"]  # no pointer
    (version,) = (out / "versions").iterdir()
    assert sorted(p.name for p in version.iterdir()) == [
        "_FAILED", "_heartbeat", "_yololake_run.json", "quarantine"]  # left to inspect
    with pytest.raises(QuarantineThresholdError):
        run(spark, _config(max_fraction=0.0), _inputs(lake), str(out))
