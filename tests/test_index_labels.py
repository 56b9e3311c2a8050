"""The index's yolo_labels column, parsed for a whole shard at once, equals YOLOv5's own per-file parse."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from yololake.dataset import layout as L


def _one_by_one(texts):
    return pa.array([L.yolo_labels(t).ravel() for t in texts], pa.list_(pa.float32()))


def _random_texts(n, seed=0):
    rng = np.random.default_rng(seed)
    return ["\n".join(f"{rng.integers(0, 5)} {rng.random():.6f} {rng.random():.6f} {rng.random():.6f} "
                      f"{rng.random():.6f}" for _ in range(rng.integers(0, 9) if i % 7 else 0)) for i in range(n)]


@pytest.mark.parametrize("texts", [
    [],
    ["", ""],
    _random_texts(500),
    # repeated rows (exact, and equal only once parsed as float32): YOLOv5's np.unique order
    ["1 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1 0.1\n1 0.5 0.5 0.1 0.1", "0 0.5 0.5 0.1 0.1", ""],
    ["0 0.5 0.5 0.1 0.1\n0 0.50 0.5 0.1 0.1", "2 0.1 0.2 0.3 0.4"],
    # irregular texts the job never writes, still parsed as YOLOv5 parses them
    ["0 0.5\t0.5 0.1 0.1", " 0 0.5 0.5 0.1 0.1 ", "0 0.5 0.5 0.1 0.1\n\n1 0.5 0.5 0.1 0.1\n"],
])
def test_shard_parse_equals_yolov5_per_file(texts):
    assert L.yolo_labels_column(texts).equals(_one_by_one(texts))


def test_ragged_rows_fail_as_yolov5_fails():
    """4 + 6 tokens is 10 = 2 x 5 in total, but no row of 5: refused, not silently re-cut."""
    with pytest.raises(ValueError):
        L.yolo_labels_column(["0 0.5 0.5 0.1\n0 0.5 0.5 0.1 0.1 0.2"])
