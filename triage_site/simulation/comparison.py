"""Compares policies for a SimulationRun: each policy on each seed (or on the recorded trace) with
scheduler.simulator, reduced to the compact result its page shows.

Pure functions over plain data (no ORM) apart from the progress callback, so the Celery task stays small.
Per policy the result holds: per-class latency summaries over the requests of all seeds pooled
(scheduler.metrics.per_class_summary, the same pooling as scheduler.compare), run-level figures
averaged over seeds, a downsampled queue-length timeline and a sample of requests for the Gantt chart
(both from the first seed, whose workload every policy shares).
"""
import csv
import io
import json
import os
import re
import tempfile
from dataclasses import fields

from django.conf import settings

from scheduler.config import POLICIES
from scheduler.costmodel import SETTINGS
from scheduler.metrics import CLASSES, LATENCY_METRICS, downsample, per_class_summary
from scheduler.simulator import SimulationParams, run_simulation

TIMELINE_POINTS = 400
GANTT_SAMPLE = 60
SUMMARY_KEYS = ("count", "mean", "p50", "p95", "p99", "max")
PARAM_FIELDS = tuple(f.name for f in fields(SimulationParams) if f.name not in ("policy", "seed", "trace",
                                                                                   "fast_forward", "record_requests"))


def build_params(params: dict, policy: str, seed: int, trace_path=None) -> SimulationParams:
    """SimulationParams from the stored dict; validates (ValueError with the simulator's message)."""
    values = {k: params[k] for k in PARAM_FIELDS if k in params}
    sim = SimulationParams(policy=policy, seed=seed, trace=trace_path, **values)
    sim.validate()
    return sim


def execute(params: dict, policies: list, seeds: list, trace=None, progress=None) -> dict:
    """Run every policy on every seed. trace: list of trace records (recorded traffic) or None (synthetic).
    progress(fraction) is called as runs advance."""
    trace_path = None
    try:
        if trace:
            handle, trace_path = tempfile.mkstemp(prefix="triage-trace-", suffix=".jsonl")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                for record in trace:
                    out.write(json.dumps(record) + "\n")
            seeds = seeds[:1]  # a trace is fixed: one run per policy
        units = len(policies) * len(seeds)
        per_policy = {}
        for p_index, policy in enumerate(policies):
            results = []
            for s_index, seed in enumerate(seeds):
                unit = p_index * len(seeds) + s_index
                sim_params = build_params(params, policy, seed, trace_path)

                def report(done, total, _t, unit=unit):
                    if progress is not None and total:
                        progress((unit + done / total) / units)

                try:
                    results.append(run_simulation(sim_params, progress=report, progress_every=200))
                except ValueError as exc:
                    raise ValueError(_name_recorded_request(str(exc), trace)) from exc
                if progress is not None:
                    progress((unit + 1) / units)
            per_policy[policy] = reduce_policy(results)
            if trace:
                # load_trace numbers requests by line and the trace is in arrival order: map back to the
                # recorded request's id so the Gantt chart names real requests.
                for rec in per_policy[policy]["sample"]:
                    rec["source_id"] = trace[rec["request_id"]].get("request_id")
    finally:
        if trace_path:
            os.unlink(trace_path)
    return {"policies": list(policies), "seeds": list(seeds), "classes": list(CLASSES),
            "per_policy": per_policy, "ratios": ratios_to_fcfs(per_policy)}


def _name_recorded_request(message, trace):
    """The simulator numbers trace requests 0..n-1; add the recorded request's id to its message."""
    match = re.match(r"request (\d+) ", message)
    if trace and match and int(match.group(1)) < len(trace):
        return f"{message} (recorded request #{trace[int(match.group(1))].get('request_id')})"
    return message


def reduce_policy(results) -> dict:
    records = [rec for result in results for rec in result.requests]
    n = len(results)
    first = results[0]
    preemptions = {k: sum(r.preemptions[k] for r in results) for k in first.preemptions}
    return {
        "per_class": per_class_summary(records, settings.TRIAGE_FIRST_TOKEN_TARGETS_S),
        "num_requests": sum(r.num_requests for r in results),
        "throughput_requests_per_s": sum(r.throughput_requests_per_s for r in results) / n,
        "throughput_tokens_per_s": sum(r.throughput_tokens_per_s for r in results) / n,
        "makespan_s": sum(r.makespan_s for r in results) / n,
        "mean_batch_occupancy": sum(r.mean_batch_occupancy for r in results) / n,
        "kv_utilization_mean": sum(r.kv_utilization_mean for r in results) / n,
        "kv_utilization_max": max(r.kv_utilization_max for r in results),
        "preemptions": preemptions,
        "timeline": downsample(first.timeline, TIMELINE_POINTS),
        "sample": sample_requests(first.requests, GANTT_SAMPLE),
    }


def sample_requests(records, limit):
    """Evenly spaced by arrival order (so the same requests for every policy of a seed), all urgencies."""
    ordered = sorted(records, key=lambda r: (r["arrival"], r["request_id"]))
    if len(ordered) > limit:
        step = len(ordered) / limit
        ordered = [ordered[int(i * step)] for i in range(limit)]
    keys = ("request_id", "urgency", "predicted_urgency", "prompt_tokens", "output_tokens", "arrival", "ready",
            "first_token", "finish", "preempted_intervals")
    return [{k: rec[k] for k in keys} for rec in ordered]


def ratios_to_fcfs(per_policy) -> dict:
    """{policy: {class: {metric: {'mean': x, 'p99': y}}}}: the policy's value over FCFS's (None without FCFS
    or when FCFS's value is 0)."""
    base = per_policy.get("fcfs")
    out = {}
    for policy, data in per_policy.items():
        out[policy] = {}
        for c in CLASSES:
            out[policy][c] = {}
            for m in LATENCY_METRICS:
                out[policy][c][m] = {}
                for stat in ("mean", "p99"):
                    b = base["per_class"][c][m][stat] if base else 0
                    out[policy][c][m][stat] = data["per_class"][c][m][stat] / b if b else None
    return out


# first_token_within_target: the class's share of first tokens within its target, on its "waiting" rows (the
# metric that runs from arrival to the first token), blank on the others
CSV_HEADER = ["policy", "class", "metric", *SUMMARY_KEYS, "mean_ratio_to_fcfs", "p99_ratio_to_fcfs",
              "first_token_within_target"]


def result_csv(result: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for policy in result["policies"]:
        data = result["per_policy"][policy]
        for c in result["classes"]:
            for m in LATENCY_METRICS:
                summary = data["per_class"][c][m]
                ratio = result["ratios"][policy][c][m]
                attainment = data["per_class"][c].get("attainment", {}) if m == "waiting" else {}
                writer.writerow([policy, c, m, *[_fmt(summary[k]) for k in SUMMARY_KEYS],
                                 _fmt(ratio["mean"]), _fmt(ratio["p99"]), _fmt(attainment.get("share"))])
    return buffer.getvalue()


def _fmt(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


SETTING_CHOICES = tuple(sorted(SETTINGS))
POLICY_CHOICES = POLICIES
