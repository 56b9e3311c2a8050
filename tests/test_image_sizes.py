"""Sizes come from the images (no manifest, no image_size), an EXIF-rotated JPEG is labelled on its display,
the real YOLOv5 loader puts its box on the drawn pixels, the prebuilt cache is the one YOLOv5 builds itself,
and staging checks each image's bytes against the index."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image, ImageDraw
from yololake.build.config import parse_config
from yololake.build.main import run
from yololake.build.plan import JobInputs
from yololake.dataset.versions import current_folder
from yololake.errors import DatasetError
from yololake.train import prepare, stage, yolov5_env

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).resolve().parents[1] / "conf" / "udacity.yaml"
COLUMNS = ["frame", "xmin", "xmax", "ymin", "ymax", "class_id"]
BOX = (120, 60, 240, 150)          # xmin, ymin, xmax, ymax, drawn on the 480x300 display of portrait.jpg
RED, GREY = (230, 20, 20), (60, 60, 60)
LANDSCAPE = {"a.jpg": (64, 40), "b.jpg": (80, 50), "c.jpg": (50, 80), "d.jpg": (96, 64), "e.jpg": (64, 40)}


def make_lake(root: str) -> dict:
    """Udacity layout without image_size: JPEGs of several sizes, and portrait.jpg, stored 300x480 with EXIF
    orientation 6, whose box was drawn on its 480x300 display (what a labeling tool shows)."""
    images, labels = os.path.join(root, "images"), os.path.join(root, "labels")
    os.makedirs(images)
    os.makedirs(labels)
    display = Image.new("RGB", (480, 300), GREY)
    ImageDraw.Draw(display).rectangle([BOX[0], BOX[1], BOX[2] - 1, BOX[3] - 1], fill=RED)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": stored is the display turned a quarter counter-clockwise
    display.transpose(Image.Transpose.ROTATE_90).save(os.path.join(images, "portrait.jpg"), "JPEG", quality=95,
                                                      exif=exif.tobytes())
    for name, size in LANDSCAPE.items():
        Image.new("RGB", size, (30, 90, 160)).save(os.path.join(images, name), "JPEG", quality=90)
    train = [["portrait.jpg", BOX[0], BOX[2], BOX[1], BOX[3], 1]]
    train += [[n, 2, w // 2, 3, h // 2, 2] for n, (w, h) in list(LANDSCAPE.items())[:3]]
    val = [[n, 4, w - 4, 5, h - 5, 3] for n, (w, h) in list(LANDSCAPE.items())[3:]]
    pd.DataFrame(train, columns=COLUMNS).to_csv(os.path.join(labels, "labels_train.csv"), index=False)
    pd.DataFrame(val, columns=COLUMNS).to_csv(os.path.join(labels, "labels_val.csv"), index=False)
    return {"images": images, "labels": labels, "rows": train + val}


@pytest.fixture(scope="module")
def sized_run(spark, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("sizes"))
    lake = make_lake(os.path.join(root, "lake"))
    doc = yaml.safe_load(CONFIG.read_text())
    doc.pop("image_size", None)
    doc["images"] = {"mode": "copy"}  # copies: the index records their sha256
    doc["report"] = {"enabled": False}
    out = os.path.join(root, "dataset")
    summary = run(spark, parse_config(doc), JobInputs(annotations=(lake["labels"],), images=lake["images"]), out)
    return lake, current_folder(out), summary


@pytest.fixture(scope="module")
def loader(tmp_path_factory):
    os.environ["YOLOV5_CONFIG_DIR"] = yolov5_env.config_dir(str(tmp_path_factory.mktemp("yolo_cfg")))
    from yolov5.utils import dataloaders

    return dataloaders


def _labels(out: str) -> dict[str, list[tuple]]:
    return {p.stem: [tuple(float(v) for v in line.split()) for line in p.read_text().splitlines()]
            for p in Path(out, "labels").rglob("*.txt")}


def test_sizes_come_from_the_images_and_boxes_are_normalised_by_the_display(sized_run):
    lake, out, summary = sized_run
    assert summary["quarantined"] == 0 and summary["frames_written"] == 1 + len(LANDSCAPE)
    index = pq.read_table(os.path.join(out, "index")).to_pandas().set_index("key")
    portrait = index.loc["portrait"]
    assert (portrait.width, portrait.height, portrait.stored_width, portrait.stored_height, portrait.orientation,
            portrait.image_format) == (480, 300, 300, 480, 6, "jpeg")
    for name, (w, h) in LANDSCAPE.items():
        assert (index.loc[name[:-4], "width"], index.loc[name[:-4], "height"]) == (w, h)
    labels = _labels(out)
    x1, y1, x2, y2 = BOX
    expected = {"portrait": [(0, (x1 + x2) / 2 / 480, (y1 + y2) / 2 / 300, (x2 - x1) / 480, (y2 - y1) / 300)]}
    for frame, xmin, xmax, ymin, ymax, cls in lake["rows"][1:]:
        w, h = LANDSCAPE[frame]
        expected[frame[:-4]] = [(cls - 1, (xmin + xmax) / 2 / w, (ymin + ymax) / 2 / h, (xmax - xmin) / w,
                                 (ymax - ymin) / h)]
    assert labels.keys() == expected.keys()
    for key, rows in expected.items():
        assert np.allclose(labels[key], rows, atol=1e-6), (key, labels[key], rows)
    assert len(index.loc["portrait", "yolo_labels"]) == 5


def test_yolov5s_loader_puts_the_drawn_box_on_its_pixels(sized_run, loader, tmp_path, capfd):
    _, out, _ = sized_run
    prepared = prepare.prepare(stage.resolve(out), str(tmp_path / "stage"), "never", progress=False)
    listing = os.path.join(os.path.dirname(prepared.yaml_path), "train.txt")
    dataset = loader.LoadImagesAndLabels(listing, img_size=480, batch_size=1, augment=False, workers=0)
    assert "New cache created" not in capfd.readouterr().err  # our cache was used
    i = next(n for n, f in enumerate(dataset.im_files) if f.endswith("portrait.jpg"))
    assert tuple(dataset.shapes[i]) == (480, 300)
    image, labels, _, _ = dataset[i]
    img = image.numpy().transpose(1, 2, 0)  # RGB, letterboxed to 480x480
    (_, _, cx, cy, bw, bh), = labels.numpy()
    size = img.shape[1], img.shape[0]
    x1, x2 = round((cx - bw / 2) * size[0]), round((cx + bw / 2) * size[0])
    y1, y2 = round((cy - bh / 2) * size[1]), round((cy + bh / 2) * size[1])
    assert (x2 - x1, y2 - y1) == (BOX[2] - BOX[0], BOX[3] - BOX[1])
    inside = img[y1 + 3:y2 - 3, x1 + 3:x2 - 3].reshape(-1, 3).mean(0)
    strips = (img[y1 - 6:y1 - 3, x1:x2], img[y2 + 3:y2 + 6, x1:x2],
              img[y1:y2, x1 - 6:x1 - 3], img[y1:y2, x2 + 3:x2 + 6])
    ring = np.concatenate([s.reshape(-1, 3) for s in strips]).mean(0)
    assert np.allclose(inside, RED, atol=12), inside
    assert np.allclose(ring, GREY, atol=12), ring


def test_the_prebuilt_cache_equals_what_yolov5_builds_itself(sized_run, loader, tmp_path):
    _, out, summary = sized_run
    prepared = prepare.prepare(stage.resolve(out), str(tmp_path / "stage"), "never", progress=False)
    for split in summary["by_split"]:
        ours = np.load(prepared.caches[split]["path"], allow_pickle=True).item()
        theirs_dir = tmp_path / f"theirs_{split}"
        theirs_dir.mkdir()
        shutil.copy(os.path.join(os.path.dirname(prepared.yaml_path), f"{split}.txt"), theirs_dir / f"{split}.txt")
        loader.LoadImagesAndLabels(str(theirs_dir / f"{split}.txt"), img_size=128, batch_size=4, workers=0)
        theirs = np.load(theirs_dir / f"{split}.cache", allow_pickle=True).item()
        assert ours.keys() == theirs.keys()
        for key in ("hash", "results", "msgs", "version"):
            assert ours[key] == theirs[key], key
        for image in (k for k in theirs if k not in ("hash", "results", "msgs", "version")):
            (lb_o, shape_o, seg_o), (lb_t, shape_t, seg_t) = ours[image], theirs[image]
            assert lb_o.dtype == lb_t.dtype and np.array_equal(lb_o, lb_t), image
            assert tuple(shape_o) == tuple(shape_t) and seg_o == seg_t == [], image
            if image.endswith("portrait.jpg"):
                assert tuple(shape_o) == (480, 300)  # YOLOv5's exif_size: the stored 300x480 turned


def _flip_a_byte(path: str) -> None:
    data = bytearray(Path(path).read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the sha256 tells
    Path(path).write_bytes(bytes(data))


def test_staging_checks_each_images_bytes(sized_run, tmp_path):
    _, out, _ = sized_run
    source = stage.resolve(out)
    root = stage.stage(source, str(tmp_path / "a"), progress=False).root
    image = next(str(p) for p in Path(root, "images").rglob("portrait.jpg"))
    _flip_a_byte(image)
    os.remove(os.path.join(root, stage.MARKER))
    report = stage.stage(source, str(tmp_path / "a"), progress=False)
    assert report.fetched == 1 and Path(image).read_bytes() == Path(out, os.path.relpath(image, root)).read_bytes()

    changed = str(tmp_path / "changed")
    shutil.copytree(out, changed)
    _flip_a_byte(next(str(p) for p in Path(changed, "images").rglob("portrait.jpg")))
    with pytest.raises(DatasetError, match=r"portrait\.jpg \(its sha256 is not the index's\)"):
        stage.stage(stage.resolve(changed), str(tmp_path / "b"), progress=False)
    grown = next(str(p) for p in Path(changed, "images").rglob("a.jpg"))
    Path(grown).write_bytes(Path(grown).read_bytes() + b"\0")
    with pytest.raises(DatasetError, match=r"image\(s\) differ in size from the dataset's index"):
        prepare.prepare(stage.resolve(changed), str(tmp_path / "c"), "never", progress=False)
