"""The prebuilt label cache is the one YOLOv5 would build, and the real loader uses it without a rescan."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from yololake.train import prepare, stage, yolov5_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def yolov5_loader(tmp_path_factory):
    os.environ["YOLOV5_CONFIG_DIR"] = yolov5_env.config_dir(str(tmp_path_factory.mktemp("yolo_cfg")))
    from yolov5.utils import dataloaders

    return dataloaders


def test_real_loader_uses_the_prebuilt_cache_without_rescanning(demo_dataset, yolov5_loader, tmp_path, capfd):
    out, summary, _, _ = demo_dataset
    prepared = prepare.prepare(stage.resolve(out), str(tmp_path / "stage"), "never", progress=False)
    assert prepared.root == out and not prepared.staged
    for split, expected in summary["by_split"].items():
        cache = prepared.caches[split]
        assert cache["written"] and cache["results"] == (expected["frames"], 0, expected["background"], 0,
                                                         expected["frames"])
        before = os.stat(cache["path"]).st_mtime_ns
        dataset = yolov5_loader.LoadImagesAndLabels(os.path.join(os.path.dirname(cache["path"]), f"{split}.txt"),
                                                    img_size=128, batch_size=4, stride=32, workers=0)
        logged = capfd.readouterr().err
        assert f"Scanning {cache['path']}... {expected['frames']} images" in logged  # the cache-hit message
        assert "New cache created" not in logged
        assert os.stat(cache["path"]).st_mtime_ns == before  # not rewritten
        assert sum(len(lb) for lb in dataset.labels) == expected["boxes"]
        image, _, _, _ = dataset[0]
        assert image.shape[0] == 3


def test_prebuilt_cache_equals_what_yolov5_builds_itself(demo_dataset, yolov5_loader, tmp_path):
    out, _, _, _ = demo_dataset
    prepared = prepare.prepare(stage.resolve(out), str(tmp_path / "stage"), "never", progress=False)
    theirs_dir = tmp_path / "theirs"
    theirs_dir.mkdir()
    ours = np.load(prepared.caches["train"]["path"], allow_pickle=True).item()
    # The same list file in another folder: no cache there, so YOLOv5 scans every image and writes its own.
    shutil.copy(os.path.join(os.path.dirname(prepared.yaml_path), "train.txt"), theirs_dir / "train.txt")
    yolov5_loader.LoadImagesAndLabels(str(theirs_dir / "train.txt"), img_size=128, batch_size=4, workers=0)
    theirs = np.load(theirs_dir / "train.cache", allow_pickle=True).item()
    assert ours.keys() == theirs.keys()
    for key in ("hash", "results", "msgs", "version"):
        assert ours[key] == theirs[key], key
    for image in (k for k in theirs if k not in ("hash", "results", "msgs", "version")):
        (lb_o, shape_o, seg_o), (lb_t, shape_t, seg_t) = ours[image], theirs[image]
        assert lb_o.dtype == lb_t.dtype and np.array_equal(lb_o, lb_t), image
        assert tuple(shape_o) == tuple(shape_t) and seg_o == seg_t == []


def test_a_changed_dataset_gets_a_new_cache_and_a_corrupt_label_is_counted(demo_dataset, tmp_path):
    out, _, _, _ = demo_dataset
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, symlinks=True)
    first = prepare.prepare(stage.resolve(str(copy)), str(tmp_path / "stage"), "never", progress=False)
    again = prepare.prepare(stage.resolve(str(copy)), str(tmp_path / "stage"), "never", progress=False)
    assert not again.caches["val"]["written"]  # same hash: left as is
    with open(os.path.join(copy, "val.txt")) as f:
        label = os.path.join(copy, "labels", f.readline().strip()[len("./images/"):]).rsplit(".", 1)[0] + ".txt"
    with open(label, "a") as f:
        f.write("0 0.5 0.5 1.5 0.1\n")  # out of bounds: YOLOv5 calls the pair corrupt
    changed = prepare.prepare(stage.resolve(str(copy)), str(tmp_path / "stage"), "never", progress=False)
    _, _, _, nc, n = changed.caches["val"]["results"]
    assert changed.caches["val"]["written"] and nc == 1 and n == first.caches["val"]["results"][4]
    cache = np.load(changed.caches["val"]["path"], allow_pickle=True).item()
    assert any("non-normalized or out of bounds coordinates" in m for m in cache["msgs"])
