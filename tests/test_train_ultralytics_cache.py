"""The prebuilt ultralytics cache is the one ultralytics builds itself, the real loader uses it without a scan,
and a cache version this code does not know is left to ultralytics (said in one line)."""
from __future__ import annotations

import os

import numpy as np
import pytest
from yololake.train import prepare, stage, ultralytics_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ultralytics_data(tmp_path_factory):
    base = tmp_path_factory.mktemp("ucfg")
    os.environ.update(YOLO_OFFLINE="1", YOLO_CONFIG_DIR=ultralytics_env.config_dir(str(base)))
    from ultralytics.data import dataset, utils

    return dataset, utils


def _load(ultralytics_data, yaml_path: str, split: str):
    dataset, utils = ultralytics_data
    data = utils.check_det_dataset(yaml_path)
    return dataset.YOLODataset(img_path=data[split], data=data, imgsz=128, augment=False, task="detect")


def test_real_loader_uses_the_prebuilt_cache_and_it_equals_its_own(demo_dataset, ultralytics_data, tmp_path, capfd):
    out, summary, _, _ = demo_dataset
    prepared = prepare.prepare(stage.resolve(out), str(tmp_path / "stage"), "never", progress=False,
                               trainer="ultralytics")
    assert prepared.root == out and not prepared.staged
    for split, expected in summary["by_split"].items():
        cache = prepared.caches[split]
        assert cache["path"] == os.path.join(os.path.dirname(prepared.yaml_path), "labels", split, "00000.cache")
        assert cache["written"] and cache["results"] == (expected["frames"], 0, expected["background"], 0,
                                                         expected["frames"])
        before = (os.stat(cache["path"]).st_mtime_ns, open(cache["path"], "rb").read())
        loaded = _load(ultralytics_data, prepared.yaml_path, split)
        logged = "".join(capfd.readouterr())
        assert f"Scanning {cache['path']}... {expected['frames']} images" in logged and "New cache" not in logged
        assert (os.stat(cache["path"]).st_mtime_ns, open(cache["path"], "rb").read()) == before
        assert sum(len(lb["cls"]) for lb in loaded.labels) == expected["boxes"]
    # ultralytics' own scan of the same files (our cache moved aside) writes the same dict.
    path = prepared.caches["train"]["path"]
    ours = np.load(path, allow_pickle=True).item()
    os.rename(path, tmp_path / "ours.cache")
    _load(ultralytics_data, prepared.yaml_path, "train")
    assert f"Scanning {path[:-len('.cache')]}..." in "".join(capfd.readouterr())  # a scan, no cache read
    theirs = np.load(path, allow_pickle=True).item()
    assert {k: ours[k] for k in ("hash", "results", "msgs", "version")} == {
        k: theirs[k] for k in ("hash", "results", "msgs", "version")}
    assert len(ours["labels"]) == len(theirs["labels"]) == summary["by_split"]["train"]["frames"]
    for a, b in zip(ours["labels"], theirs["labels"]):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], np.ndarray):
                assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key
            else:
                assert a[key] == b[key] and type(a[key]) is type(b[key]), key
    # Nothing was written into the built dataset: its label shards are links from the shadow folder.
    assert not [n for n in os.listdir(os.path.join(out, "labels", "train")) if n.endswith(".cache")]


def test_an_unknown_cache_version_is_left_to_ultralytics(demo_dataset, ultralytics_data, tmp_path, monkeypatch):
    out = demo_dataset[0]
    monkeypatch.setattr(ultralytics_data[0], "DATASET_CACHE_VERSION", "9.9.9")
    prepared = prepare.prepare(stage.resolve(out), str(tmp_path / "stage"), "never", progress=False,
                               trainer="ultralytics")
    cache = prepared.caches["val"]
    assert cache["skipped"].endswith("uses label cache version 9.9.9, not 1.0.12 that yololake writes: it will "
                                     "scan the images itself") and not os.path.exists(cache["path"])


def test_a_staged_copy_holds_both_trainers_caches_and_the_real_loader_reads_ours(demo_dataset, ultralytics_data,
                                                                                  tmp_path, capfd):
    out = demo_dataset[0]
    ours = prepare.prepare(stage.resolve(out), str(tmp_path / "stage"), "always", progress=False, trainer="ultralytics")
    yolov5 = prepare.prepare(stage.resolve(out), str(tmp_path / "stage"), "always", progress=False)
    assert ours.staged and ours.root == yolov5.root and ours.root.startswith(str(tmp_path / "stage"))
    assert ours.caches["val"]["path"] == os.path.join(ours.root, "labels", "val", "00000.cache")
    assert yolov5.caches["val"]["path"] == os.path.join(ours.root, "val.cache")
    _load(ultralytics_data, ours.yaml_path, "val")
    assert f"Scanning {ours.caches['val']['path']}..." in "".join(capfd.readouterr())
    again = prepare.prepare(stage.resolve(out), str(tmp_path / "stage"), "always", progress=False,
                            trainer="ultralytics")
    assert not again.caches["val"]["written"]  # up to date: the loader did not touch the files it hashes
