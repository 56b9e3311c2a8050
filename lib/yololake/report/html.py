"""The report's one-page index.html: the run's counts (stats.json) beside the pictures."""
from __future__ import annotations

from collections.abc import Mapping
from html import escape

_STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:1em 0}"
          "td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}th{background:#eee}"
          "td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #ddd}")


def _table(header: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_index(root: str, stats: Mapping, numbers: Mapping, images: Mapping[str, str]) -> str:
    """`images`: title -> file name inside the report folder; `numbers`: what report.aggregate returned."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>yololake report</title>"
             f"<style>{_STYLE}</style></head><body><h1>Dataset report</h1><p><code>{escape(root)}</code></p>"]
    if stats:
        parts.append(_table(["run", "value"], [[k, stats[k]] for k in (
            "rows_in", "boxes_written", "quarantined", "duplicates_dropped", "boxes_clipped", "frames_written",
            "wall_seconds")
            if k in stats]))
        by_split = stats.get("by_split", {})
        parts.append(_table(["split", "frames", "background", "boxes", "shards"],
                            [[s, v.get("frames"), v.get("background"), v.get("boxes"), v.get("shards")]
                             for s, v in by_split.items()]))
        if stats.get("unreadable_files"):
            parts.append(_table(["unreadable file (left out)", "problem"],
                                [[u["path"], u["problem"]] for u in stats["unreadable_files"]]))
        if stats.get("frames_by_status"):
            parts.append(_table(["frame status", "frames"], list(map(list, stats["frames_by_status"].items()))))
    classes = numbers.get("classes", {})
    names = sorted({n for per in classes.values() for n in per})
    if classes:
        parts.append(_table(["class", *classes], [[n, *(classes[s].get(n, 0) for s in classes)] for n in names]))
    reasons = numbers.get("reasons", {})
    parts.append(_table(["quarantine reason", "rows"], [[k, v] for k, v in reasons.items()] or [["(none)", 0]]))
    for title, name in images.items():
        parts.append(f"<h2>{escape(title)}</h2><img src='{escape(name)}' alt='{escape(title)}'>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
