"""Deterministic discrete-event simulator of continuous batching under a Scheduler (no wall clock).

Time advances by the cost model's step cost. When the batch is a steady pure-decode batch the simulator
skips ahead with Scheduler.fast_forward(), computing every skipped step's cost with the same formula and
order of floating-point operations, so the result is identical to stepping (tested).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from .config import POLICIES, SchedulerConfig
from .core import Scheduler
from .costmodel import SETTINGS
from .metrics import per_class_summary
from .request import PreemptAction, SchedRequest
from .workload import WorkloadSpec, generate_workload, load_trace

TIMELINE_MAX_POINTS = 2000


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
    preemption: bool = True
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
        _check(isinstance(self.seed, int), f"seed must be an integer, got {self.seed!r}")

    def workload_spec(self) -> WorkloadSpec:
        return WorkloadSpec(self.user_request_gap, self.max_concurrent_user_requests, self.gap_num,
                            priority_error_rate=self.priority_error_rate,
                            priority_error_distance=self.priority_error_distance,
                            length_error_rate=self.length_error_rate,
                            length_error_distance=self.length_error_distance, seed=self.seed)

    def scheduler_config(self) -> SchedulerConfig:
        model = SETTINGS[self.setting]
        host_blocks = int(self.kv_host_gb * 1e9 // (model.kv_bytes_per_token * self.kv_block_size))
        return SchedulerConfig(policy=self.policy, max_batch_size=self.batch_size, token_budget=self.token_budget,
                               kv_block_size=self.kv_block_size, kv_device_blocks=model.kv_device_blocks(self.kv_block_size),
                               kv_host_blocks=host_blocks, aging=self.aging, aging_bound=self.aging_bound,
                               swap_cost_per_token=2 * model.swap_per_token,
                               recompute_cost_per_token=model.recompute_cost_per_token(),
                               preemption=self.preemption)


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


def run_simulation(params: SimulationParams, progress=None, progress_every: int = 1000) -> SimulationResult:
    """Simulate one policy on one workload. progress(done, total, sim_time) is called every progress_every
    completions and at the end."""
    params.validate()
    model = SETTINGS[params.setting]
    workload = load_trace(params.trace) if params.trace else generate_workload(params.workload_spec())
    ready_times = _classifier_ready_times(workload, params.classifier_latency, params.classifier_batch_size)
    order = sorted(range(len(workload)), key=lambda i: (ready_times[i], i))
    config = params.scheduler_config()
    sched = Scheduler(config)
    capacity = config.kv_device_blocks
    block_size = config.kv_block_size
    true_output = {w.request_id: w.output_tokens for w in workload}
    sched_requests = {}

    c1d, c2d, swap_rate = model.c1d, model.c2d, model.swap_per_token
    t = 0.0
    nxt = 0
    total = len(workload)
    acc = _Accumulators()
    preempt_counts = {"total": 0, "keep": 0, "swap": 0, "recompute": 0}
    timeline = []
    last_counts = None

    def record_timeline(now: float) -> None:
        nonlocal last_counts
        counts = sched.waiting_counts() + (sched.num_running,)
        if counts != last_counts:
            timeline.append([now, *counts])
            last_counts = counts

    while nxt < total or len(sched):
        while nxt < total and ready_times[order[nxt]] <= t:
            w = workload[order[nxt]]
            req = SchedRequest(w.request_id, w.predicted_urgency, w.prompt_tokens, w.predicted_output_tokens,
                               w.arrival_time)
            sched_requests[w.request_id] = req
            sched.add(req)
            nxt += 1
        if not len(sched):
            t = ready_times[order[nxt]]
            continue
        plan = sched.schedule(t)
        record_timeline(t)
        if plan.batch_size == 0:
            sched.complete_step(t)
            if nxt >= total:
                raise RuntimeError("simulation stalled: requests queued but none can be scheduled")
            t = ready_times[order[nxt]]
            continue
        # cost of this step (see costmodel.py for the derivation)
        dt = 0.0
        if plan.decode:
            dt += c2d + c1d * sum(r.computed_tokens + 1 for r in plan.decode)
        for req, n in plan.prefill:
            dt += model.prefill_chunk(req.computed_tokens, n)
        for req, action in plan.preempt:
            preempt_counts[action.value] += 1
            preempt_counts["total"] += 1
            if action is PreemptAction.SWAP:
                dt += swap_rate * req.computed_tokens
        for req in plan.swap_in:
            dt += swap_rate * req.computed_tokens
        finished = [r.request_id for r in plan.decode if r.generated_tokens + 1 >= true_output[r.request_id]]
        new_tokens = len(plan.decode)
        for req, n in plan.prefill:
            if req.computed_tokens + n >= req._prefill_target:
                new_tokens += 1
                if req.generated_tokens + 1 >= true_output[req.request_id]:
                    finished.append(req.request_id)
        t += dt
        acc.add_step(dt, sched.kv_device_blocks_used, plan.batch_size, new_tokens)
        acc.done += len(sched.complete_step(t, finished))
        record_timeline(t)
        if params.fast_forward:
            t = _fast_forward(sched, t, true_output, ready_times[order[nxt]] if nxt < total else None,
                              c1d, c2d, block_size, acc)
            record_timeline(t)
        if progress is not None and acc.done - acc.reported >= progress_every:
            acc.reported = acc.done
            progress(acc.done, total, t)
    if progress is not None:
        progress(acc.done, total, t)
    steps, batch_sum = acc.steps, acc.batch_sum

    records = []
    for w in workload:
        r = sched_requests[w.request_id]
        ready = ready_times[w.request_id]
        records.append({
            "request_id": w.request_id, "urgency": w.urgency, "predicted_urgency": w.predicted_urgency,
            "prompt_tokens": w.prompt_tokens, "output_tokens": w.output_tokens,
            "predicted_output_tokens": w.predicted_output_tokens, "arrival": w.arrival_time, "ready": ready,
            "first_token": r.first_token_time, "finish": r.finish_time, "preemptions": r.preemptions,
            "preempted_intervals": [list(iv) for iv in r.preempted_intervals],
            "waiting": r.first_token_time - w.arrival_time, "ttft": r.first_token_time - ready,
            "e2e": r.finish_time - w.arrival_time,
        })
    first_arrival = min((w.arrival_time for w in workload), default=0.0)
    makespan = t - first_arrival
    return SimulationResult(
        params=asdict(params), per_class=per_class_summary(records),
        throughput_requests_per_s=total / makespan if makespan > 0 else 0.0,
        throughput_tokens_per_s=acc.tokens_out / makespan if makespan > 0 else 0.0,
        makespan_s=makespan,
        mean_batch_occupancy=(batch_sum / steps / params.batch_size) if steps else 0.0,
        mean_batch_size=batch_sum / steps if steps else 0.0,
        kv_utilization_mean=(acc.kv_integral / acc.busy_time / capacity) if acc.busy_time > 0 else 0.0,
        kv_utilization_max=acc.kv_max / capacity,
        preemptions=preempt_counts, steps=steps, num_requests=total,
        timeline=_downsample(timeline), requests=records if params.record_requests else [],
    )


class _Accumulators:
    """Per-step statistics; both the stepping and the fast-forward paths add steps in the same order."""

    def __init__(self) -> None:
        self.steps = 0
        self.batch_sum = 0
        self.kv_integral = 0.0
        self.kv_max = 0
        self.busy_time = 0.0
        self.tokens_out = 0
        self.done = 0
        self.reported = 0

    def add_step(self, dt: float, kv_used: int, batch: int, new_tokens: int) -> None:
        self.steps += 1
        self.batch_sum += batch
        self.kv_integral += kv_used * dt
        if kv_used > self.kv_max:
            self.kv_max = kv_used
        self.busy_time += dt
        self.tokens_out += new_tokens


def _fast_forward(sched: Scheduler, t: float, true_output: dict, next_ready, c1d: float, c2d: float,
                  block_size: int, acc: _Accumulators) -> float:
    """Skip steady pure-decode steps exactly (same per-step float operations as stepping). Returns new t."""
    running = sched.running
    if not running:
        return t
    limit = min(true_output[r.request_id] - r.generated_tokens for r in running)
    m = sched.steady_decode_steps(limit)
    if m <= 0:
        return t
    k = len(running)
    base_context = sum(r.computed_tokens + 1 for r in running)
    # block growth: request r needs a new block at step j when computed+j+1 crosses a block boundary
    used = sched.kv_device_blocks_used
    growth = {}
    for r in running:
        j = r._device_blocks * block_size - r.computed_tokens
        while j < m:
            growth[j] = growth.get(j, 0) + 1
            j += block_size
    taken = 0
    kv_integral, kv_max, busy = acc.kv_integral, acc.kv_max, acc.busy_time
    growth_get = growth.get
    for j in range(m):
        if next_ready is not None and next_ready <= t:
            break
        used += growth_get(j, 0)
        dt = c2d + c1d * (base_context + k * j)
        t += dt
        kv_integral += used * dt  # same operation order as _Accumulators.add_step
        if used > kv_max:
            kv_max = used
        busy += dt
        taken += 1
    acc.kv_integral, acc.kv_max, acc.busy_time = kv_integral, kv_max, busy
    acc.steps += taken
    acc.batch_sum += taken * k
    acc.tokens_out += taken * k
    if taken:
        finished = [r.request_id for r in running if r.generated_tokens + taken >= true_output[r.request_id]]
        acc.done += len(sched.fast_forward(taken, t, finished))
    return t


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


def _downsample(timeline: list) -> list:
    if len(timeline) <= TIMELINE_MAX_POINTS:
        return timeline
    stride = -(-len(timeline) // TIMELINE_MAX_POINTS)
    sampled = timeline[::stride]
    if sampled[-1] is not timeline[-1]:
        sampled.append(timeline[-1])
    return sampled
