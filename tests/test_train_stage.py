"""Staging a dataset to local disk: from a local folder and from S3 (moto on 127.0.0.1), resumed after an
interrupted run, verified against the manifest, shard archives unpacked."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from yololake.errors import DatasetError
from yololake.train import manifest, prepare, stage

pytestmark = pytest.mark.slow


class Interrupt(Exception):
    """Raised from the progress hook: the run stops with some files fetched and the rest not."""


def _stop_after(n):
    seen = []

    def hook(path):
        seen.append(path)
        if len(seen) == n:
            raise Interrupt(path)
    return hook


def _tree(root):
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


def _expected(source_root):
    """What a staged copy must hold: the source's training files, images dereferenced."""
    return {rel: data for rel, data in _tree(source_root).items()
            if rel.startswith(("labels/", "images/", "index/")) or rel in stage.TOP_FILES or rel == "_SUCCESS"}


def test_local_folder_staging_resumes_after_an_interruption(demo_dataset, tmp_path):
    out = demo_dataset[0]
    source = stage.resolve(out)
    with pytest.raises(Interrupt):
        stage.stage(source, str(tmp_path), workers=2, progress=False, on_file=_stop_after(25))
    root = os.path.join(tmp_path, source.folder_name)
    assert not os.path.exists(os.path.join(root, stage.MARKER))  # not usable yet
    partial = len(_tree(root))
    Path(root, "train.txt.tmp-deadbeef").write_text("half a file")  # what a kill leaves
    report = stage.stage(source, str(tmp_path), workers=4, progress=False)
    assert report.files == len(_expected(out)) and 0 < report.fetched <= report.files - partial + 4
    staged = _tree(root)
    assert {k: v for k, v in staged.items() if k != stage.MARKER} == _expected(out)
    assert not any(os.path.islink(os.path.join(root, k)) for k in staged)  # images are real copies
    assert stage.stage(source, str(tmp_path), progress=False).skipped  # the marker matches: nothing to do


def test_a_staged_file_that_differs_from_the_manifest_is_fetched_again(demo_dataset, tmp_path):
    source = stage.resolve(demo_dataset[0])
    root = stage.stage(source, str(tmp_path), progress=False).root
    os.remove(os.path.join(root, stage.MARKER))
    shard = next(s for s in source.shards if s["boxes"])
    folder = os.path.join(root, "labels", shard["split"], shard["shard"])
    victim = next(os.path.join(folder, n) for n in sorted(os.listdir(folder)) if os.path.getsize(os.path.join(folder, n)))
    data = bytearray(Path(victim).read_bytes())
    data[0] = ord("4") if data[0] != ord("4") else ord("3")  # same size, other class: only the sha256 tells
    Path(victim).write_bytes(bytes(data))
    report = stage.stage(source, str(tmp_path), progress=False)
    assert report.fetched == shard["frames"]  # that shard again, nothing else
    assert manifest.shard_digest(folder) == shard["sha256"]


def test_prepare_with_stage_always_writes_the_yaml_yolov5_reads(demo_dataset, tmp_path):
    import yaml

    prepared = prepare.prepare(stage.resolve(demo_dataset[0]), str(tmp_path), "always", progress=False)
    assert prepared.staged and prepared.root.startswith(str(tmp_path))
    with open(prepared.yaml_path) as f:
        doc = yaml.safe_load(f)
    assert doc["path"] == os.path.realpath(prepared.root) and doc["train"] == "train.txt"
    assert doc["names"] == ["car", "truck", "pedestrian", "bicyclist", "light"] and doc["nc"] == 5
    assert all(os.path.exists(c["path"]) for c in prepared.caches.values())


def _archive_layout(src, dst):
    """The shard_archive layout: labels/<split>/<shard>.tar, its sha256 and size in shards.json."""
    shutil.copytree(src, dst, symlinks=False, ignore=shutil.ignore_patterns("labels"))
    shards = json.loads(Path(src, "shards.json").read_text())
    for shard in shards:
        base = f"{shard['split']}/{shard['shard']}"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            folder = os.path.join(src, "labels", base)
            for name in sorted(os.listdir(folder)):
                tar.add(os.path.join(folder, name), arcname=f"labels/{base}/{name}")
        os.makedirs(os.path.join(dst, "labels", shard["split"]), exist_ok=True)
        Path(dst, "labels", f"{base}.tar").write_bytes(buf.getvalue())
        shard.update(object=f"labels/{base}.tar", object_bytes=len(buf.getvalue()),
                     object_sha256=hashlib.sha256(buf.getvalue()).hexdigest())
    Path(dst, "shards.json").write_text(json.dumps(shards))


def test_shard_archives_are_unpacked_and_verified(demo_dataset, tmp_path):
    src = str(tmp_path / "archived")
    _archive_layout(demo_dataset[0], src)
    source = stage.resolve(src)
    assert manifest.archived(source) and prepare.should_copy(source, "auto")  # local, but must be unpacked
    prepared = prepare.prepare(source, str(tmp_path / "stage"), "auto", progress=False)
    for shard in source.shards:
        assert manifest.shard_digest(os.path.join(prepared.root, "labels", shard["split"], shard["shard"])) == \
            shard["sha256"]
    assert prepared.caches["train"]["results"][:4] == (demo_dataset[1]["by_split"]["train"]["frames"], 0,
                                                       demo_dataset[1]["by_split"]["train"]["background"], 0)
    with pytest.raises(DatasetError, match="must be unpacked; use --stage auto or always"):
        prepare.should_copy(source, "never")


def test_staging_from_s3_resumes_after_an_interrupted_run(demo_dataset, s3_bucket, tmp_path, monkeypatch):
    import s3fs

    endpoint, bucket = s3_bucket
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)  # botocore's own setting: no endpoint in our code
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
    out = demo_dataset[0]
    expected = _expected(out)
    for rel, data in expected.items():  # the dataset as build-dataset writes it to S3 (images copied)
        fs.pipe_file(f"{bucket}/datasets/demo/{rel}", data)
    url = f"s3://{bucket}/datasets/demo"
    source = stage.resolve(url)
    assert not source.is_local and source.version == stage.resolve(out).version
    with pytest.raises(Interrupt):
        prepare.prepare(source, str(tmp_path), "auto", workers=2, progress=False, on_file=_stop_after(30))
    prepared = prepare.prepare(stage.resolve(url), str(tmp_path), "auto", workers=4, progress=False)
    assert prepared.staged
    assert {k: v for k, v in _tree(prepared.root).items() if k in expected} == expected
    assert prepared.caches["val"]["results"][4] == demo_dataset[1]["by_split"]["val"]["frames"]
    fs.rm_file(f"{bucket}/datasets/demo/_SUCCESS")
    with pytest.raises(DatasetError, match="no _SUCCESS marker"):
        stage.resolve(url)
