"""`yololake versions OUT [--keep N]`: list a versioned output's versions; keep the newest N, never the current.

    yololake versions s3://lake/datasets/udacity
    yololake versions /data/datasets/udacity --keep 3
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from yololake.cli import run_command
from yololake.config import StorageConfig
from yololake.dataset import layout as L
from yololake.dataset.versions import Version, VersionedOutput
from yololake.errors import DatasetError, UsageError
from yololake.storage import Store


def describe(version: Version, current: str, leftover: bool) -> str:
    mark = "*" if version.id == current else " "
    if not version.committed:
        return f"{mark} {version.id}  {'leftover of a killed run' if leftover else 'being written'}"
    s = version.success or {}
    fp = s.get("fingerprint") or {}
    return (f"{mark} {version.id}  {s.get('committed', '?'):25s} {s.get('frames', '?'):>9} frames "
            f"{s.get('boxes', '?'):>10} boxes  inputs: {fp.get('files', '?')} files, {fp.get('bytes', 0) / 1e6:.1f} MB, "
            f"config {str(fp.get('config_sha256', '?'))[:12]}, yololake {fp.get('yololake', '?')}")


def keep_newest(output: VersionedOutput, keep: int) -> list[str]:
    """Remove committed versions beyond the `keep` newest; the current version always stays."""
    current = output.current_id()
    committed = [v for v in output.version_ids() if output.version(v).committed]
    doomed = [v for v in committed[:-keep] if v != current]
    for version_id in doomed:
        output.remove(version_id)
    return doomed


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="yololake versions", description=__doc__.splitlines()[0])
    p.add_argument("out", help="the build-dataset --out folder or URL")
    p.add_argument("--keep", type=int, help="remove all but the newest N committed versions (the current one stays)")
    p.add_argument("--stale-after", type=float, default=600.0,
                   help="seconds without a heartbeat after which an unfinished version counts as a leftover (600)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        if args.keep is not None and args.keep < 1:
            raise UsageError(f"--keep {args.keep}: must be at least 1 (the current version always stays)")
        output = VersionedOutput(Store(args.out, StorageConfig()))
        if not output.store.exists(L.OUTPUT_MARKER):
            raise DatasetError(f"{args.out} is not a versioned yololake output (no {L.OUTPUT_MARKER}); "
                               "pass the --out folder of build-dataset")
        current, leftovers = output.current_id(), set(output.leftovers(args.stale_after))
        for version_id in output.version_ids():
            print(describe(output.version(version_id), current, version_id in leftovers))
        print(f"current: {current or '(none committed yet)'}  (* marks it; {output.store.display(L.DATASET_YAML)})")
        if args.keep is not None:
            removed = keep_newest(output, args.keep)
            print(f"removed {len(removed)} version(s): {', '.join(removed) or '-'}")
        return 0

    return run_command("yololake versions", body)
