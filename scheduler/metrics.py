"""Latency summaries (mean, p50, p95, p99, max) per urgency class and overall, and chart down-sampling."""
from __future__ import annotations

import math

from . import targets
from .urgency import LEVELS

CLASSES = tuple(str(level) for level in LEVELS) + ("overall",)  # the keys of per_class_summary()
LATENCY_METRICS = ("waiting", "ttft", "e2e")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in 0..100)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(values: list[float]) -> dict:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "mean": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    return {"count": len(ordered), "mean": sum(ordered) / len(ordered), "p50": percentile(ordered, 50),
            "p95": percentile(ordered, 95), "p99": percentile(ordered, 99), "max": ordered[-1]}


def per_class_summary(records: list[dict], first_token_targets: tuple | None = None) -> dict:
    """records carry 'urgency', 'waiting', 'ttft', 'e2e'; returns {class: {metric: summary}} for CLASSES,
    plus each class's target attainment (see per_class_summary_columns)."""
    return per_class_summary_columns([r["urgency"] for r in records],
                                     {m: [r[m] for r in records] for m in LATENCY_METRICS}, first_token_targets)


def per_class_summary_columns(urgencies: list, columns: dict, first_token_targets: tuple | None = None) -> dict:
    """The same summary from parallel lists (columns[metric][i] belongs to the request of urgencies[i]), so
    the simulator need not build a dict per request when it keeps no per-request records.

    With a 'waiting' column (arrival -> first token), each class also gets 'attainment': the share of its
    requests whose first token came within the class's target ({"within", "total", "share"}; targets from
    TRIAGE_FIRST_TOKEN_TARGETS_S or scheduler.targets' defaults); 'overall' counts every request against its
    own class's target."""
    members = {level: [] for level in LEVELS}  # indices per class, in one pass
    for i, u in enumerate(urgencies):
        group = members.get(u)
        if group is not None:
            group.append(i)
    summary = {str(u): {m: summarize([column[i] for i in idx]) for m, column in columns.items()}
               for u, idx in members.items()}
    summary["overall"] = {m: summarize(column) for m, column in columns.items()}
    if "waiting" in columns:
        limits = first_token_targets or targets.first_token_targets()
        pairs = list(zip(urgencies, columns["waiting"]))
        per_level = targets.attainment([(u, w) for u, w in pairs if u in members], limits)
        for level, result in zip(LEVELS, per_level):
            summary[str(level)]["attainment"] = result
        within = sum(result["within"] for result in per_level)
        total = sum(result["total"] for result in per_level)
        summary["overall"]["attainment"] = {"within": within, "total": total, "share": within / total if total else None}
    return summary


def downsample(points: list, limit: int) -> list:
    """At most about `limit` points for a chart: the first point of every stride, and always the last one.
    Returns copies (lists), so the caller may change them without touching the originals."""
    if len(points) <= limit:
        return [list(point) for point in points]
    stride = -(-len(points) // limit)
    sampled = points[::stride]
    if sampled[-1] is not points[-1]:
        sampled.append(points[-1])
    return [list(point) for point in sampled]
