"""The output root's life cycle: claim it, publish the driver-side files, commit with `_SUCCESS` last.

A reader takes a folder for a dataset only when `_SUCCESS` exists. It is written after everything else,
with a create-only write (S3 conditional PUT, O_EXCL locally), so of two runs committing the same output
exactly one wins.
"""
from __future__ import annotations

import datetime as dt
import glob
import os
import shutil

from yololake.dataset.layout import IMAGES, LABELS, LISTS, RUN_MARKER, SUCCESS, list_file
from yololake.errors import OutputExistsError
from yololake.storage import Store, json_bytes


def claim(store: Store, overwrite: bool, run_info: dict) -> None:
    """Make the root ours for this run.

    A committed dataset is refused unless `overwrite`; a failed run of ours is cleared; a non-empty
    folder that is not ours is never touched.
    """
    names = store.names()
    if names:
        committed = SUCCESS in names
        if committed and not overwrite:
            raise OutputExistsError(f"--out {store.display()} already holds a committed dataset ({SUCCESS} "
                                    "exists); pass --overwrite to replace it, or choose another --out")
        if not (committed or RUN_MARKER in names):
            raise OutputExistsError(f"--out {store.display()} is not empty and was not written by yololake; "
                                    "choose an empty or new folder")
        if committed:  # uncommit first: an interrupted clean-up never leaves a folder that looks committed
            store.remove(SUCCESS)
        for name in names:
            if name not in (SUCCESS, RUN_MARKER):
                store.remove(name)
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    store.put(RUN_MARKER, json_bytes({**run_info, "started": started}))


def sweep_temporaries(store: Store) -> None:
    """Local only: remove hidden per-attempt folders a killed task attempt may have left (shard level)."""
    if not store.local:
        return
    for kind in (LABELS, IMAGES):
        for stale in glob.glob(os.path.join(glob.escape(store.root), kind, "*", ".*.tmp-*")):
            shutil.rmtree(stale, ignore_errors=True)


def publish_list(store: Store, split: str) -> None:
    """Concatenate the per-shard list parts of `split` (shard order) into `<split>.txt`, streaming."""
    with store.open_write(list_file(split)) as out:
        for part in store.names(f"{LISTS}/{split}"):
            out.write(store.read(f"{LISTS}/{split}/{part}"))


def commit(store: Store, summary: dict) -> None:
    store.remove(LISTS)
    if not store.create_exclusive(SUCCESS, json_bytes(summary)):
        raise OutputExistsError(f"another run committed --out {store.display()} first ({SUCCESS} exists); "
                                "this run's files were identical or are superseded; nothing more to do")
