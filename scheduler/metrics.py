"""Latency summaries (mean, p50, p95, p99, max) per urgency class and overall."""
from __future__ import annotations

import math


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


LATENCY_METRICS = ("waiting", "ttft", "e2e")


def per_class_summary(records: list[dict]) -> dict:
    """records carry 'urgency', 'waiting', 'ttft', 'e2e'; returns {'0'..'4','overall': {metric: summary}}."""
    groups = {str(u): [r for r in records if r["urgency"] == u] for u in range(5)}
    groups["overall"] = records
    return {name: {m: summarize([r[m] for r in group]) for m in LATENCY_METRICS} for name, group in groups.items()}
