"""Deterministic discrete-event simulator of continuous batching under a Scheduler (no wall clock).

Time advances by the cost model's step cost. When the batch is a steady pure-decode batch the simulator
skips ahead (fast_forward.py), computing every skipped step's cost with the same formula and order of
floating-point operations, so the result is identical to stepping (tested).
"""
from __future__ import annotations

import gc
import json
import random
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from . import targets
from .config import AGING_MODES, POLICIES, SchedulerConfig
from .costmodel import SETTINGS
from .fast_forward import FastForwardScheduler, skip_steady_steps
from .metrics import downsample, per_class_summary, per_class_summary_columns
from .plan import PreemptAction
from .request import SchedRequest
from .workload import WorkloadSpec, check_confusion, draw_from_confusion, generate_workload, load_trace

TIMELINE_MAX_POINTS = 2000


PREFILL_COSTS = ("sum", "longest")
PREEMPTION_MIN_WAIT_SHARE = 0.1  # of level 0's first-token target: the default wait for a slot instead of preempting


@dataclass
class SimulationParams:
    policy: str = "semantic"
    setting: str = "A100_4B"
    user_request_gap: float = 1.0
    max_concurrent_user_requests: int = 5
    gap_num: int = 20
    batch_size: int = 16
    token_budget: int = 2048
    kv_block_size: int = 16
    kv_host_gb: float = 16.0
    priority_error_rate: float = 0.0
    priority_error_distance: int = 1
    length_error_rate: float = 0.0
    length_error_distance: float = 0.5
    classifier_latency: float = 0.003
    classifier_batch_size: int = 5
    aging: bool = False
    aging_bound: float = 2.0
    aging_mode: str = "admissions"   # or "deadline" (deadline_aging.py; targets from TRIAGE_FIRST_TOKEN_TARGETS_S)
    confusion: tuple | None = None   # the classifier's measured confusion matrix (workload.load_confusion)
    preemption: bool = True
    within_class_preemption: bool = False  # shortest remaining work first inside a class (SchedulerConfig)
    within_class_min_gain: int = 32
    within_class_min_run: int = 8
    # "sum": a step's prefill chunks cost one after another (compute-bound, our default); "longest": they run side
    # by side at the cost of the longest, as the paper's code charges a prefill step (for parity runs only)
    prefill_cost: str = "sum"
    prefill_token_weight: float | None = None  # SchedulerConfig's; None: batch_size x the cost model's c2p / c2d
    # SchedulerConfig's: no urgency preemption while a running request is predicted to finish within this many
    # decode steps. None: the steps in PREEMPTION_MIN_WAIT_SHARE of level 0's first-token target on the setting
    preemption_min_wait: float | None = None
    seed: int = 0
    trace: str | None = None
    fast_forward: bool = True
    record_requests: bool = True

    def validate(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        if self.setting not in SETTINGS:
            raise ValueError(f"setting must be one of {', '.join(SETTINGS)}, got {self.setting!r}")
        _check(self.user_request_gap >= 0, f"user_request_gap must be >= 0, got {self.user_request_gap}")
        _check_int("max_concurrent_user_requests", self.max_concurrent_user_requests, 0)
        _check_int("gap_num", self.gap_num, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("token_budget", self.token_budget, 1)
        _check_int("kv_block_size", self.kv_block_size, 1)
        _check_int("classifier_batch_size", self.classifier_batch_size, 1)
        _check_int("priority_error_distance", self.priority_error_distance, 0)
        _check(self.kv_host_gb >= 0, f"kv_host_gb must be >= 0, got {self.kv_host_gb}")
        for name in ("priority_error_rate", "length_error_rate"):
            value = getattr(self, name)
            _check(0.0 <= value <= 1.0, f"{name} must be between 0 and 1, got {value}")
        _check(0.0 <= self.length_error_distance <= 1.0,
               f"length_error_distance must be between 0 and 1, got {self.length_error_distance}")
        _check(self.classifier_latency >= 0, f"classifier_latency must be >= 0, got {self.classifier_latency}")
        _check(self.aging_bound >= 1.0, f"aging_bound must be >= 1.0, got {self.aging_bound}")
        _check(self.aging_mode in AGING_MODES, f"aging_mode must be one of {', '.join(AGING_MODES)}, got {self.aging_mode!r}")
        _check(isinstance(self.seed, int), f"seed must be an integer, got {self.seed!r}")
        _check(self.prefill_cost in PREFILL_COSTS,
               f"prefill_cost must be one of {', '.join(PREFILL_COSTS)}, got {self.prefill_cost!r}")
        _check_int("within_class_min_gain", self.within_class_min_gain, 0)
        _check_int("within_class_min_run", self.within_class_min_run, 0)
        _check(self.preemption_min_wait is None or 0 <= self.preemption_min_wait < float("inf"),
               f"preemption_min_wait must be a number >= 0, got {self.preemption_min_wait}")
        _check(self.prefill_token_weight is None or 0 <= self.prefill_token_weight < float("inf"),
               f"prefill_token_weight must be a number >= 0, got {self.prefill_token_weight}")
        if self.confusion is not None:
            self.confusion = check_confusion(self.confusion, "confusion")

    def workload_spec(self) -> WorkloadSpec:
        return WorkloadSpec(self.user_request_gap, self.max_concurrent_user_requests, self.gap_num,
                            priority_error_rate=self.priority_error_rate,
                            priority_error_distance=self.priority_error_distance,
                            length_error_rate=self.length_error_rate,
                            length_error_distance=self.length_error_distance, seed=self.seed,
                            confusion=self.confusion)

    def scheduler_config(self) -> SchedulerConfig:
        model = SETTINGS[self.setting]
        host_blocks = int(self.kv_host_gb * 1e9 // (model.kv_bytes_per_token * self.kv_block_size))
        return SchedulerConfig(policy=self.policy, max_batch_size=self.batch_size, token_budget=self.token_budget,
                               kv_block_size=self.kv_block_size, kv_device_blocks=model.kv_device_blocks(self.kv_block_size),
                               kv_host_blocks=host_blocks, aging=self.aging, aging_bound=self.aging_bound,
                               aging_mode=self.aging_mode, deadline_targets=targets.first_token_targets(),
                               swap_cost_per_token=2 * model.swap_per_token,
                               recompute_cost_per_token=model.recompute_cost_per_token(),
                               preemption=self.preemption, within_class_preemption=self.within_class_preemption,
                               within_class_min_gain=self.within_class_min_gain,
                               within_class_min_run=self.within_class_min_run,
                               prefill_token_weight=self.resolved_prefill_token_weight(),
                               preemption_min_wait=self.resolved_preemption_min_wait())

    def resolved_preemption_min_wait(self) -> float:
        """A tenth of level 0's first-token target (2 s: 0.2 s), in decode steps of the setting: A100_4B 16.7,
        A5000_4B 6.6. Waiting that long for a slot costs the urgent request little, and displacing a long
        request for it costs that one more (docs/scheduler.md, "Preemption only when it pays")."""
        if self.preemption_min_wait is not None:
            return self.preemption_min_wait
        level0_target = targets.first_token_targets()[0]
        return SETTINGS[self.setting].decode_steps_in(PREEMPTION_MIN_WAIT_SHARE * level0_target)

    def resolved_prefill_token_weight(self) -> float:
        if self.prefill_token_weight is not None:
            return self.prefill_token_weight
        return SETTINGS[self.setting].prefill_token_weight(self.batch_size)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _check_int(name: str, value, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


@dataclass
class SimulationResult:
    params: dict
    per_class: dict                 # {'0'..'4','overall': {'waiting'|'ttft'|'e2e': summary}}
    throughput_requests_per_s: float
    throughput_tokens_per_s: float
    makespan_s: float
    mean_batch_occupancy: float     # mean requests per step / batch_size
    mean_batch_size: float
    kv_utilization_mean: float      # time-weighted reserved device blocks / capacity
    kv_utilization_max: float
    preemptions: dict               # {'total', 'keep', 'swap', 'recompute'}
    steps: int
    num_requests: int
    timeline: list = field(default_factory=list)   # [t, waiting u0..u4, running]
    requests: list = field(default_factory=list)   # per-request records

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


class _SimRequest(SchedRequest):
    """A SchedRequest that also carries its true output length (EOS), which only the simulator reads.
    An attribute rather than a dict lookup by request_id because it is checked for every request every step."""

    __slots__ = ("eos_tokens",)

    def __init__(self, w) -> None:
        super().__init__(w.request_id, w.predicted_urgency, w.prompt_tokens, w.predicted_output_tokens,
                         w.arrival_time)
        self.eos_tokens = w.output_tokens


def run_simulation(params: SimulationParams, progress=None, progress_every: int = 1000) -> SimulationResult:
    """Simulate one policy on one workload. progress(done, total, sim_time) is called every progress_every
    completions and at the end."""
    params.validate()
    with _cyclic_gc_paused():
        return _simulate(params, progress, progress_every)


@contextmanager
def _cyclic_gc_paused():
    """Pause CPython's cyclic garbage collector for the run (restored afterwards).

    Why: a run keeps several long-lived objects per request (workload entry, request, heap entry, record)
    and creates no reference cycles, so reference counting frees everything; the cyclic collector would
    only re-scan the growing population again and again (about a fifth of the run time at 100 k requests)
    without finding anything to free."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _simulate(params: SimulationParams, progress, progress_every: int) -> SimulationResult:
    model = SETTINGS[params.setting]
    workload = load_trace(params.trace) if params.trace else generate_workload(params.workload_spec())
    if params.trace and params.confusion is not None:  # a recorded trace's urgencies with the measured errors
        rng = random.Random(params.seed)
        for request in workload:
            request.predicted_urgency = draw_from_confusion(params.confusion, request.urgency, rng)
    ready_times = _classifier_ready_times(workload, params.classifier_latency, params.classifier_batch_size)
    order = sorted(range(len(workload)), key=lambda i: (ready_times[i], i))
    arrivals = [workload[i] for i in order]           # in the order they reach the scheduler
    arrival_ready = [ready_times[i] for i in order]   # non-decreasing
    config = params.scheduler_config()
    sched = FastForwardScheduler(config)
    capacity = config.kv_device_blocks
    block_size = config.kv_block_size
    sched_requests = {}

    c1d, c2d, swap_rate = model.c1d, model.c2d, model.swap_per_token
    prefill_chunk = model.prefill_chunk
    prefill_longest = params.prefill_cost == "longest"
    t = 0.0
    nxt = 0
    total = len(workload)
    totals = RunTotals()
    preempt_counts = {"total": 0, "keep": 0, "swap": 0, "recompute": 0}
    timeline = []
    last_counts = None

    def record_timeline(now: float) -> None:
        nonlocal last_counts
        counts = sched.waiting_counts() + (sched.num_running,)
        if counts != last_counts:
            timeline.append([now, *counts])
            last_counts = counts

    # requests in the scheduler = nxt - totals.done (the simulator never cancels)
    while nxt < total or totals.done < nxt:
        while nxt < total and arrival_ready[nxt] <= t:
            req = _SimRequest(arrivals[nxt])
            sched_requests[req.request_id] = req
            sched.add(req)
            nxt += 1
        if totals.done == nxt:
            t = arrival_ready[nxt]
            continue
        plan = sched.schedule(t)
        record_timeline(t)
        decode, prefill = plan.decode, plan.prefill
        if not decode and not prefill:
            sched.complete_step(t)
            if nxt >= total:
                raise RuntimeError("simulation stalled: requests queued but none can be scheduled")
            t = arrival_ready[nxt]
            continue
        # cost of this step (see costmodel.py for the derivation); integer context sum, so order-free
        dt = 0.0
        if decode:
            dt += c2d + c1d * (sum([r.computed_tokens for r in decode]) + len(decode))
        if prefill_longest and prefill:
            dt += max(prefill_chunk(req.computed_tokens, n) for req, n in prefill)
        else:
            for req, n in prefill:
                dt += prefill_chunk(req.computed_tokens, n)
        for req, action in plan.preempt:
            preempt_counts[action.value] += 1
            preempt_counts["total"] += 1
            if action is PreemptAction.SWAP:
                dt += swap_rate * req.computed_tokens
        for req in plan.swap_in:
            dt += swap_rate * req.computed_tokens
        finished = [r.request_id for r in decode if r.generated_tokens + 1 >= r.eos_tokens]
        new_tokens = len(decode)
        for req, n in prefill:
            if req.computed_tokens + n >= req.prefill_target:
                new_tokens += 1
                if req.generated_tokens + 1 >= req.eos_tokens:
                    finished.append(req.request_id)
        t += dt
        totals.add_step(dt, sched.kv_device_blocks_used, len(decode) + len(prefill), new_tokens)
        # the queue lengths only change here when something finished, so only then can the timeline change
        done_now = sched.complete_step(t, finished)
        if done_now:
            totals.done += len(done_now)
            record_timeline(t)
        if params.fast_forward:
            t = skip_steady_steps(sched, t, arrival_ready[nxt] if nxt < total else None, c1d, c2d, block_size,
                                  totals, record_timeline)
        if progress is not None and totals.done - totals.reported >= progress_every:
            totals.reported = totals.done
            progress(totals.done, total, t)
    if progress is not None:
        progress(totals.done, total, t)
    steps, batch_sum = totals.steps, totals.batch_sum

    served = [sched_requests[w.request_id] for w in workload]  # in workload order
    if params.record_requests:
        records = [_request_record(w, r, ready_times[w.request_id]) for w, r in zip(workload, served)]
        per_class = per_class_summary(records)
    else:  # the same summary from columns, without a dict per request
        records = []
        per_class = per_class_summary_columns([w.urgency for w in workload], {
            "waiting": [r.first_token_time - w.arrival_time for w, r in zip(workload, served)],
            "ttft": [r.first_token_time - ready_times[w.request_id] for w, r in zip(workload, served)],
            "e2e": [r.finish_time - w.arrival_time for w, r in zip(workload, served)]})
    first_arrival = min((w.arrival_time for w in workload), default=0.0)
    makespan = t - first_arrival
    return SimulationResult(
        params=asdict(params), per_class=per_class,
        throughput_requests_per_s=total / makespan if makespan > 0 else 0.0,
        throughput_tokens_per_s=totals.tokens_out / makespan if makespan > 0 else 0.0,
        makespan_s=makespan,
        mean_batch_occupancy=(batch_sum / steps / params.batch_size) if steps else 0.0,
        mean_batch_size=batch_sum / steps if steps else 0.0,
        kv_utilization_mean=(totals.kv_integral / totals.busy_time / capacity) if totals.busy_time > 0 else 0.0,
        kv_utilization_max=totals.kv_max / capacity,
        preemptions=preempt_counts, steps=steps, num_requests=total,
        timeline=downsample(timeline, TIMELINE_MAX_POINTS), requests=records,
    )


def _request_record(w, r: SchedRequest, ready: float) -> dict:
    return {
        "request_id": w.request_id, "urgency": w.urgency, "predicted_urgency": w.predicted_urgency,
        "prompt_tokens": w.prompt_tokens, "output_tokens": w.output_tokens,
        "predicted_output_tokens": w.predicted_output_tokens, "arrival": w.arrival_time, "ready": ready,
        "first_token": r.first_token_time, "finish": r.finish_time, "preemptions": r.preemptions,
        "preempted_intervals": [list(iv) for iv in r.preempted_intervals],
        "waiting": r.first_token_time - w.arrival_time, "ttft": r.first_token_time - ready,
        "e2e": r.finish_time - w.arrival_time,
    }


class RunTotals:
    """Per-step statistics of a run; the stepping and the fast-forward paths add steps in the same order.
    `done` counts finished requests, `reported` is `done` at the last progress callback."""

    __slots__ = ("steps", "batch_sum", "kv_integral", "kv_max", "busy_time", "tokens_out", "done", "reported")

    def __init__(self) -> None:
        self.steps = self.batch_sum = self.kv_max = self.tokens_out = self.done = self.reported = 0
        self.kv_integral = self.busy_time = 0.0

    def add_step(self, dt: float, kv_used: int, batch: int, new_tokens: int) -> None:
        self.steps += 1
        self.batch_sum += batch
        self.kv_integral += kv_used * dt
        if kv_used > self.kv_max:
            self.kv_max = kv_used
        self.busy_time += dt
        self.tokens_out += new_tokens


def _classifier_ready_times(workload, latency: float, batch_size: int) -> list[float]:
    """The urgency/length classifier is one server handling up to batch_size requests per call, in arrival
    order; a request reaches the scheduler when its call finishes."""
    ready = [0.0] * len(workload)
    free_at = 0.0
    by_arrival = sorted(range(len(workload)), key=lambda i: (workload[i].arrival_time, i))
    i = 0
    while i < len(by_arrival):
        arrival = workload[by_arrival[i]].arrival_time
        batch = [by_arrival[i]]
        while len(batch) < batch_size and i + len(batch) < len(by_arrival) \
                and workload[by_arrival[i + len(batch)]].arrival_time <= max(free_at, arrival):
            batch.append(by_arrival[i + len(batch)])
        finish = max(free_at, arrival) + latency
        for idx in batch:
            ready[workload[idx].request_id] = finish
        free_at = finish
        i += len(batch)
    return ready

