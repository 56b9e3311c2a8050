"""The report the build job renders into each version, local or on an object store.

It is computed from the job's own frame table (labels, sizes, split, box counts: already in memory) and
the quarantine counts, so nothing is read back from the output; the preview frames' images are read
where they live, through fsspec. The pictures are rendered in a local temporary folder, then put into
`<version>/report/` (a folder renamed into place locally; one PUT per file on an object store).
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence

from pyspark.sql import DataFrame

from yololake.build.images import read_image
from yololake.dataset import layout as L
from yololake.errors import StorageError
from yololake.report import draw as D
from yololake.report.main import TILE, aggregate_tables, render, sample_frames, text_boxes
from yololake.storage import Store, atomic_folder, describe_error

log = logging.getLogger("yololake.report")
_SAMPLE_COLUMNS = ("key", "split", "source_image", "width", "height", "text")


def _image(frame: dict, store: Store):
    """The frame's source image (a grey canvas when it cannot be read: the report never fails a build)."""
    data = None
    if frame.get("source_image"):
        try:
            data = read_image(frame["source_image"], store.storage)
        except OSError as exc:
            log.warning("report: cannot read %s for the preview: %s", frame["source_image"], exc)
    return D.decode_frame_image(data, int(frame["width"]), int(frame["height"]), TILE)


def write_job_report(frames: DataFrame, store: Store, names: Sequence[str], stats: dict, preview_frames: int,
                     seed: int) -> str:
    """`frames`: one row per written frame with split, key, source_image, width, height, box_count and
    text (its label file's content). Returns where the report is."""
    numbers = aggregate_tables(text_boxes(frames.select("split", "key", "text")), frames,
                               stats.get("quarantine_by_reason", {}), names)
    previews = {split: [(_image(f, store), D.parse_label_text(f["text"]), f["key"])
                        for f in sample_frames(frames, split, preview_frames, seed, _SAMPLE_COLUMNS)]
                for split in numbers["per_frame"]}
    if store.local:
        target = os.path.join(store.root, L.REPORT)
        try:
            with atomic_folder(target) as tmp:
                render(tmp, numbers, names, stats, previews, store.display())
        except OSError as exc:  # a full disk, a read-only folder: name what was being written
            raise StorageError(f"cannot write the report {target}: {describe_error(exc)}; nothing was "
                               "committed. Free space or fix the folder's permissions, then rerun") from None
        return store.display(L.REPORT)
    with tempfile.TemporaryDirectory(prefix="yololake-report-") as tmp:
        render(tmp, numbers, names, stats, previews, store.display())
        files = {}
        for name in sorted(os.listdir(tmp)):
            with open(os.path.join(tmp, name), "rb") as f:
                files[f"{L.REPORT}/{name}"] = f.read()
    try:
        store.put_many(files)
    except StorageError as exc:
        raise StorageError(f"{exc}; nothing was committed") from None
    return store.display(L.REPORT)
