"""The run summary of build-dataset: stats.json's counts by split, class, reason and frame status, and the
lines the job prints."""
from __future__ import annotations

import json
from typing import NamedTuple

from yololake.build.config import JobConfig
from yololake.build.plan import Plan


class RowCounts(NamedTuple):
    """The annotation rows by outcome (an unreadable file left out counts as one quarantined row)."""

    rows_in: int
    valid: int
    quarantined: int
    reasons: dict
    """reason -> quarantined rows."""
    clipped: int
    """valid rows whose box was clipped to the image."""


def summarize(plan: Plan, config: JobConfig, root: str, counts: RowCounts, written: int, duplicates: int,
              shards: list, statuses: dict) -> dict:
    """Counts by split, class, reason and frame status, from the small aggregates the job already holds."""
    names = config.classes.names
    by_split_class: dict = {}
    frames_by_split = {}
    for s in shards:  # class counts come from the shard writers, which read every label line anyway
        per_class = by_split_class.setdefault(s["split"], {})
        for cls, n in sorted(json.loads(s["classes"] or "{}").items(), key=lambda item: int(item[0])):
            per_class[names[int(cls)]] = per_class.get(names[int(cls)], 0) + n
        entry = frames_by_split.setdefault(s["split"], {"frames": 0, "background": 0, "boxes": 0, "shards": 0})
        entry["frames"] += s["frames"]
        entry["background"] += s["background"]
        entry["boxes"] += s["boxes"]
        entry["shards"] += 1
    by_split_class = {split: dict(sorted(per_class.items(), key=lambda item: names.index(item[0])))
                      for split, per_class in by_split_class.items()}
    return {
        "out": root,
        "rows_in": counts.rows_in,
        "boxes_written": written,
        "quarantined": counts.quarantined,
        "duplicates_dropped": duplicates,
        "boxes_clipped": counts.clipped,
        "quarantine_by_reason": dict(sorted(counts.reasons.items())),
        "unreadable_files": [{"path": u.path, "problem": u.problem} for u in plan.unreadable],
        "frames_written": sum(s["frames"] for s in shards),
        "frames_by_status": dict(sorted(statuses.items())),
        "by_split": frames_by_split,
        "boxes_by_split_and_class": by_split_class,
    }


def format_summary(summary: dict) -> str:
    if summary.get("up_to_date"):
        return (f"up to date: version {summary['version']} ({summary['frames']} frames, {summary['boxes']} boxes, "
                f"committed {summary.get('committed', '?')}) is current at {summary['pointer']}; "
                "nothing was built (--force builds anyway)")
    lines = [f"dataset: {summary['pointer']} -> version {summary['version']} ({summary['out']})",
             f"  {summary['rows_in']} annotation rows -> {summary['boxes_written']} boxes written, "
             f"{summary['quarantined']} quarantined, {summary['duplicates_dropped']} duplicates dropped, "
             f"{summary['boxes_clipped']} clipped to the image ({summary['wall_seconds']}s)"]
    for split, s in summary["by_split"].items():
        lines.append(f"  {split:5s}: {s['frames']} frames ({s['background']} background), {s['boxes']} boxes, "
                     f"{s['shards']} shard(s)")
    if summary["quarantine_by_reason"]:
        reasons = ", ".join(f"{k}={v}" for k, v in summary["quarantine_by_reason"].items())
        lines.append(f"  quarantined by reason: {reasons} (see {summary['out']}/quarantine)")
    for entry in summary["unreadable_files"]:
        lines.append(f"  warning: unreadable file left out: {entry['path']}: {entry['problem']}")
    if "val" not in summary["by_split"]:
        lines.append("  warning: the val split is empty; YOLOv5 needs validation images")
    return "\n".join(lines)
