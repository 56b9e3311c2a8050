"""The real YOLOv5 loader (pip yolov5 7.0.14) reads the job's output: all found, 0 corrupt, 0 warnings."""
from __future__ import annotations

import os

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_real_yolov5_loader_accepts_every_label(demo_dataset, yolov5_offline):
    dataloaders, general = yolov5_offline
    out, summary, _, _ = demo_dataset
    data = general.check_dataset(os.path.join(out, "dataset.yaml"), autodownload=False)
    assert data["nc"] == 5 and data["names"] == {0: "car", 1: "truck", 2: "pedestrian", 3: "bicyclist", 4: "light"}
    for split, expected in summary["by_split"].items():
        dataset = dataloaders.LoadImagesAndLabels(data[split], img_size=128, batch_size=4, stride=32, workers=0)
        cache = np.load(os.path.join(out, f"{split}.cache"), allow_pickle=True).item()
        found, missing, empty, corrupt, total = cache["results"]
        assert cache["msgs"] == [], cache["msgs"]
        # YOLOv5 counts an empty label file as found and empty (a background image).
        assert (found, missing, empty, corrupt) == (expected["frames"], 0, expected["background"], 0)
        assert total == len(dataset.im_files) == expected["frames"]
        assert sum(len(labels) for labels in dataset.labels) == expected["boxes"]
        assert all(os.path.isfile(f) for f in dataset.im_files)
        image, labels, _, _ = dataset[0]  # and a real sample loads
        assert image.shape[0] == 3
