"""The run summary of build-dataset: stats.json's counts by split, class, reason and frame status, and the
lines the job prints."""
from __future__ import annotations

from yololake.build.config import JobConfig
from yololake.build.plan import Plan


def summarize(plan: Plan, config: JobConfig, root: str, rows_in: int, written: int, quarantined: int,
              duplicates: int, reasons: dict, shards: list, statuses: dict) -> dict:
    """Counts by split, class, reason and frame status (all small aggregates)."""
    names = config.classes.names
    by_split_class: dict = {}
    for r in plan.boxes_by_split_and_class().collect():
        by_split_class.setdefault(r["split"], {})[names[r["cls"]]] = r["count"]
    frames_by_split = {}
    for s in shards:
        entry = frames_by_split.setdefault(s["split"], {"frames": 0, "background": 0, "boxes": 0, "shards": 0})
        entry["frames"] += s["frames"]
        entry["background"] += s["background"]
        entry["boxes"] += s["boxes"]
        entry["shards"] += 1
    return {
        "out": root,
        "rows_in": rows_in,
        "boxes_written": written,
        "quarantined": quarantined,
        "duplicates_dropped": duplicates,
        "quarantine_by_reason": dict(sorted(reasons.items())),
        "frames_written": sum(s["frames"] for s in shards),
        "frames_by_status": dict(sorted(statuses.items())),
        "by_split": frames_by_split,
        "boxes_by_split_and_class": by_split_class,
    }


def format_summary(summary: dict) -> str:
    lines = [f"dataset: {summary['out']}/dataset.yaml",
             f"  {summary['rows_in']} annotation rows -> {summary['boxes_written']} boxes written, "
             f"{summary['quarantined']} quarantined, {summary['duplicates_dropped']} duplicates dropped "
             f"({summary['wall_seconds']}s)"]
    for split, s in summary["by_split"].items():
        lines.append(f"  {split:5s}: {s['frames']} frames ({s['background']} background), {s['boxes']} boxes, "
                     f"{s['shards']} shard(s)")
    if summary["quarantine_by_reason"]:
        reasons = ", ".join(f"{k}={v}" for k, v in summary["quarantine_by_reason"].items())
        lines.append(f"  quarantined by reason: {reasons} (see {summary['out']}/quarantine)")
    if "val" not in summary["by_split"]:
        lines.append("  warning: the val split is empty; YOLOv5 needs validation images")
    return "\n".join(lines)
