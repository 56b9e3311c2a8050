"""The dataset report: boxes drawn where the labels say, and every chart rendered from a real dataset."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from yololake.report.draw import box_pixels, class_color, draw_boxes
from yololake.report.main import label_boxes, main, read_label_file, read_parquet_folder, sample_frames, write_report

NAMES = ["car", "truck"]


def _edge_mask(height, width, x1, y1, x2, y2):
    mask = np.zeros((height, width), dtype=bool)
    mask[y1:y2 + 1, [x1, x2]] = True
    mask[[y1, y2], x1:x2 + 1] = True
    return mask


def test_box_pixels_map_normalised_labels_to_inclusive_corners():
    # cx .5 cy .5 w .4 h .5 on 100x80: x 30..69, y 20..59; a box over the border is clipped to the image
    assert box_pixels((0, 0.5, 0.5, 0.4, 0.5), 100, 80) == (30, 20, 69, 59)
    assert box_pixels((0, 0.05, 0.5, 0.2, 0.2), 100, 80) == (0, 32, 14, 47)
    assert box_pixels((0, 0.5, 0.5, 1.0, 1.0), 100, 80) == (0, 0, 99, 79)


def test_drawn_pixels_lie_exactly_on_the_box_edges():
    blank = np.zeros((80, 100, 3), dtype=np.uint8)
    boxes = [(0, 0.5, 0.5, 0.4, 0.5), (1, 0.15, 0.2, 0.1, 0.25)]
    drawn = draw_boxes(blank, boxes)
    assert drawn.shape == blank.shape and not blank.any()  # the input is not modified
    changed = drawn.any(axis=2)
    expected = _edge_mask(80, 100, 30, 20, 69, 59) | _edge_mask(80, 100, 10, 6, 19, 25)
    assert np.array_equal(changed, expected)
    assert tuple(drawn[20, 45]) == class_color(0) and tuple(drawn[6, 12]) == class_color(1)


def test_thicker_lines_grow_inwards_and_names_sit_above_the_box():
    blank = np.full((120, 160, 3), 255, dtype=np.uint8)
    drawn = draw_boxes(blank, [(1, 0.5, 0.6, 0.5, 0.5)], NAMES, line_width=2)
    x1, y1, x2, y2 = box_pixels((1, 0.5, 0.6, 0.5, 0.5), 160, 120)
    changed = (drawn != 255).any(axis=2)
    outline = _edge_mask(120, 160, x1, y1, x2, y2) | _edge_mask(120, 160, x1 + 1, y1 + 1, x2 - 1, y2 - 1)
    assert changed[outline].all()
    inside = np.zeros_like(changed)
    inside[y1 + 2:y2 - 1, x1 + 2:x2 - 1] = True
    assert not changed[inside].any()  # nothing inside the box
    tag = changed & ~outline
    ys, xs = np.nonzero(tag)
    assert ys.size and ys.max() < y1 and xs.min() >= x1  # the name tag: just above the top-left corner
    assert xs.max() < x1 + 40 and ys.min() >= y1 - 16


def _hand_made_dataset(root):
    """A dataset folder written by hand: one 100x80 frame with known boxes, on a blank source image."""
    os.makedirs(os.path.join(root, "labels", "train", "00000"))
    with open(os.path.join(root, "labels", "train", "00000", "f1.txt"), "w") as f:
        f.write("0 0.500000 0.500000 0.400000 0.500000\n1 0.150000 0.200000 0.100000 0.250000\n")
    image = os.path.join(root, "src", "f1.png")
    os.makedirs(os.path.dirname(image))
    Image.new("RGB", (100, 80), (0, 0, 0)).save(image)
    index = pd.DataFrame([{"key": "f1", "frame_id": "f1", "split": "train", "shard": "00000", "source_image": image,
                           "ext": "png", "width": 100, "height": 80, "box_count": 2, "status": "labeled"}])
    os.makedirs(os.path.join(root, "index"))
    index.to_parquet(os.path.join(root, "index", "part-0.parquet"))
    with open(os.path.join(root, "dataset.yaml"), "w") as f:
        f.write("path: x\ntrain: train.txt\nval: val.txt\nnc: 2\nnames: [car, truck]\n")


def test_hand_made_dataset_is_read_through_spark_and_previewed_at_the_right_place(spark, tmp_path):
    root = str(tmp_path / "ds")
    _hand_made_dataset(root)
    index = read_parquet_folder(spark, os.path.join(root, "index"))
    rows = sorted(tuple(r) for r in label_boxes(index, root).collect())
    assert rows == [("train", "f1", 0, 0.5, 0.5, 0.4, 0.5), ("train", "f1", 1, 0.15, 0.2, 0.1, 0.25)]
    (frame,) = sample_frames(index, "train", 5, seed=0)
    boxes = read_label_file(root, frame)
    drawn = draw_boxes(np.asarray(Image.open(frame["source_image"]).convert("RGB")), boxes)
    assert np.array_equal(drawn.any(axis=2), _edge_mask(80, 100, 30, 20, 69, 59) | _edge_mask(80, 100, 10, 6, 19, 25))
    report = write_report(spark, root, preview_frames=4)
    assert os.path.getsize(os.path.join(report, "preview_train.png")) > 1000
    assert "quarantine reason" in open(os.path.join(report, "index.html")).read()


def test_preview_sample_is_seeded_bounded_and_stable(spark, demo_dataset):
    out, summary, _, _ = demo_dataset
    index = read_parquet_folder(spark, os.path.join(out, "index"))
    first = [f["key"] for f in sample_frames(index, "train", 5, seed=1)]
    assert len(first) == 5 and len(set(first)) == 5
    assert first == [f["key"] for f in sample_frames(index, "train", 5, seed=1)]
    assert first != [f["key"] for f in sample_frames(index, "train", 5, seed=2)]
    everything = sample_frames(index, "train", 10_000, seed=1)
    assert len(everything) == summary["by_split"]["train"]["frames"]


@pytest.mark.slow
def test_report_on_the_demo_dataset_renders_every_picture_with_the_counts(spark, demo_dataset, tmp_path):
    out, summary, planted, _ = demo_dataset
    copy = str(tmp_path / "out")
    shutil.copytree(out, copy, symlinks=True)  # the fixture is shared: report into a copy
    index = read_parquet_folder(spark, os.path.join(copy, "index"))
    assert label_boxes(index, copy).count() == summary["boxes_written"]
    report = write_report(spark, copy, preview_frames=6)
    expected = ["class_histogram.png", "label_heatmaps.png", "boxes_per_frame.png", "quarantine_reasons.png",
                *[f"preview_{s}.png" for s in summary["by_split"]], "index.html"]
    assert sorted(os.listdir(report)) == sorted(expected)
    for name in expected:
        assert os.path.getsize(os.path.join(report, name)) > 1000, name
        if name.endswith(".png"):
            with Image.open(os.path.join(report, name)) as img:
                pixels = np.asarray(img.convert("L"))
            assert pixels.std() > 1, name  # not a blank canvas
    html = open(os.path.join(report, "index.html"), encoding="utf-8").read()
    for name in expected[:-1]:
        assert f"src='{name}'" in html
    assert f"<td>boxes_written</td><td>{summary['boxes_written']}</td>" in html
    for reason, count in planted["quarantined_by_reason"].items():
        assert f"<td>{reason}</td><td>{count}</td>" in html
    assert not [n for n in os.listdir(copy) if n.startswith(".report.tmp")]


def test_cli_refuses_a_folder_that_is_not_a_dataset(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2  # not a dataset: a domain error, exit 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no index/ folder" in err[0]


def test_a_rotated_jpeg_is_previewed_as_displayed(tmp_path):
    from yololake.report.draw import load_frame_image

    exif = Image.Exif()
    exif[0x0112] = 6  # stored 30x48, displayed 48x30: the frame its labels are normalised on
    Image.new("RGB", (30, 48)).save(tmp_path / "portrait.jpg", exif=exif.tobytes())
    assert load_frame_image([str(tmp_path / "portrait.jpg")], 48, 30, 1000).shape == (30, 48, 3)
