"""The Scheduler: decides every step which requests run, shared by the inference worker and the simulator.

Data structures (why): waiting and preempted requests live in one LazyHeap keyed by the policy's priority
tuple, so add / cancel / set_urgency are O(log n). Running requests are a dict of at most max_batch_size
entries, so victim selection is O(k). Choosing a batch pops at most k requests: O(k log n).
Aging keeps a second LazyHeap keyed by the admission count at which each request's next promotion is due.
"""
from __future__ import annotations

import math

from .config import SchedulerConfig
from .queues import LazyHeap
from .request import PreemptAction, SchedRequest, StepPlan


class Scheduler:
    """Continuous-batching scheduler for fcfs / sjf / pjf / semantic policies (see docs/scheduler.md)."""

    def __init__(self, config: SchedulerConfig) -> None:
        config.validate()
        self.config = config
        self._policy = config.policy
        self._urgency_preemption = config.preemption and config.policy == "semantic"
        self._aging_on = config.aging and config.policy in ("pjf", "semantic")
        self._requests: dict = {}          # every unfinished request by id
        self._waiting = LazyHeap()         # waiting + preempted
        self._running: dict = {}           # id -> request holding a batch slot
        self._kept: dict = {}              # preempted with KEEP: paused, KV still on device
        self._aging_heap = LazyHeap()      # id -> next promotion threshold (admission count)
        self._seq = 0
        self._admissions = 0
        self._step = 0
        self._plan: StepPlan | None = None
        self.kv_device_blocks_used = 0
        self.kv_host_blocks_used = 0
        self.preemption_count = 0
        self._waiting_counts = [0, 0, 0, 0, 0]  # waiting/preempted requests per (assigned) urgency
        self._running_counts = [0, 0, 0, 0, 0]  # running requests per (assigned) urgency

    # ------------------------------------------------------------------ public operations
    def add(self, req: SchedRequest) -> None:
        """Queue a new request. O(log n)."""
        if req.request_id in self._requests:
            raise ValueError(f"request_id {req.request_id!r} is already queued")
        if req.state != "waiting" or req.generated_tokens or req.computed_tokens:
            raise ValueError(f"request {req.request_id!r} is not fresh (state={req.state})")
        need = self._admission_blocks(req)
        if need > self.config.kv_device_blocks:
            raise ValueError(f"request {req.request_id!r} needs {need} KV blocks for its prompt but the device "
                             f"has only {self.config.kv_device_blocks}")
        self._seq += 1
        req._seq = self._seq
        self._requests[req.request_id] = req
        if self._aging_on and req.urgency > 0:
            # FCFS would admit this request after the `ahead` requests already waiting.
            ahead = len(self._waiting)
            req._aging_base = self._admissions
            req._aging_interval = self.config.aging_bound * max(ahead, 1) / req.urgency
            self._aging_heap.push(req.request_id, (req._aging_base + req._aging_interval, req._seq), req)
        self._waiting.push(req.request_id, self._key(req), req)
        self._waiting_counts[req.urgency] += 1

    def cancel(self, request_id):
        """Drop a request wherever it is; frees its KV accounting. O(log n). Returns it or None."""
        req = self._requests.pop(request_id, None)
        if req is None:
            return None
        if self._waiting.remove(request_id) is not None:
            self._waiting_counts[req.urgency] -= 1
        self._aging_heap.remove(request_id)
        if self._running.pop(request_id, None) is not None:
            self._running_counts[req.urgency] -= 1
        self._kept.pop(request_id, None)
        self._free_device(req)
        self._free_host(req)
        req.kv_location = "none"
        req.state = "finished"
        req.cancelled = True
        return req

    def set_urgency(self, request_id, urgency: int) -> None:
        """Re-prioritise one request (e.g. clinician override). O(log n); effective at the next schedule()."""
        if not isinstance(urgency, int) or isinstance(urgency, bool) or not 0 <= urgency <= 4:
            raise ValueError(f"urgency must be an integer 0..4, got {urgency!r}")
        req = self._requests.get(request_id)
        if req is None:
            raise KeyError(f"unknown or finished request_id {request_id!r}")
        if request_id in self._waiting:
            self._waiting_counts[req.urgency] -= 1
            self._waiting_counts[urgency] += 1
            req.urgency = urgency
            self._waiting.push(request_id, self._key(req), req)
        else:
            if request_id in self._running:
                self._running_counts[req.urgency] -= 1
                self._running_counts[urgency] += 1
            req.urgency = urgency

    def waiting_counts(self) -> tuple:
        """Waiting + preempted requests per assigned urgency 0..4 (O(1), for queue-length timelines)."""
        return tuple(self._waiting_counts)

    def get(self, request_id):
        return self._requests.get(request_id)

    def __len__(self) -> int:
        return len(self._requests)

    @property
    def num_waiting(self) -> int:
        return len(self._waiting)

    @property
    def num_running(self) -> int:
        return len(self._running)

    @property
    def running(self) -> list:
        return list(self._running.values())

    def blocks_needed(self, req: SchedRequest) -> int:
        """Device blocks a request's current KV occupies: ceil(computed_tokens / kv_block_size)."""
        return -(-req.computed_tokens // self.config.kv_block_size)

    def queue_order(self) -> list:
        """Running first (in priority order), then waiting/preempted in the order they would be served."""
        running = sorted(self._running.values(), key=self._key)
        return [r.request_id for r in running] + [r.request_id for r in self._waiting.ordered_items()]

    # ------------------------------------------------------------------ the step
    def schedule(self, now: float) -> StepPlan:
        """Choose this step's batch. O(k log n) plus O(k^2) for victim scans (k = max_batch_size)."""
        if self._plan is not None:
            raise RuntimeError("complete_step() must be called before the next schedule()")
        self._step += 1
        if self._aging_on:
            self._apply_aging()
        plan = StepPlan()
        if len(self._waiting):
            self._admit_and_preempt(now, plan)
        decoding, prefilling = self._ensure_decode_blocks(now, plan)
        self._fill_batch(plan, decoding, prefilling)
        self._plan = plan
        return plan

    def complete_step(self, now: float, finished_ids=()) -> list:
        """Advance counters for everything in the last plan; returns the requests that finished."""
        plan = self._plan
        if plan is None:
            raise RuntimeError("complete_step() called without a preceding schedule()")
        self._plan = None
        finished_ids = set(finished_ids)
        prefilled = []
        for req, n in plan.prefill:
            if req.state != "running":
                continue  # cancelled mid-step
            req.computed_tokens += n
            if req.computed_tokens >= req._prefill_target:
                req.generated_tokens += 1
                req.computed_tokens += 1
            prefilled.append(req)
        finished = self._progress(now, prefilled, finished_ids, 1, 0) if prefilled else []
        finished += self._progress(now, plan.decode, finished_ids, 1, 1)  # blocks reserved by schedule()
        if finished_ids:
            # EOS of running requests that were not in this plan (unusual); planned ones in finished_ids
            # have already finished above, so whatever is still running here was not in the plan
            running = self._running
            others = [running[rid] for rid in finished_ids if rid in running]
            if others:
                finished += self._progress(now, others, finished_ids, 1, 0)
        return finished

    # ------------------------------------------------------------------ simulator fast path
    def steady_decode_steps(self, limit: int) -> int:
        """How many further steps (<= limit) schedule() is guaranteed to plan as the same pure-decode batch
        when nothing is added, cancelled or re-prioritised. 0 when unsure. Lets the simulator skip ahead
        exactly; the result is identical to stepping (tested)."""
        if self._plan is not None or not self._running or limit <= 0:
            return 0
        running = self._running.values()
        for req in running:
            if req.computed_tokens < req._prefill_target:
                return 0
            cap = req.max_output_tokens
            if cap is not None and cap - req.generated_tokens < limit:
                limit = cap - req.generated_tokens
        if len(self._waiting):
            if len(self._running) < self.config.max_batch_size:
                return 0  # admission blocked only by KV: let the full logic decide
            if self._urgency_preemption:
                top = self._waiting.peek()
                worst = max(r.effective_urgency for r in running) if self._aging_on else self._worst_running_urgency()
                if top.effective_urgency < worst:
                    return 0
        if limit <= 0:
            return 0
        # KV: every step may grow each request by a block; find the largest m that fits.
        bs = self.config.kv_block_size
        free_total = self.config.kv_device_blocks - self.kv_device_blocks_used

        if free_total >= len(self._running) * (limit // bs + 1):
            return limit  # even worst-case growth of every request fits

        def extra(m: int) -> int:
            return sum(max(0, -(-(r.computed_tokens + m) // bs) - r._device_blocks) for r in running)

        if extra(limit) <= free_total:
            return limit
        lo, hi = 0, limit
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if extra(mid) <= free_total:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def fast_forward(self, steps: int, now: float, finished_ids=()) -> list:
        """Apply `steps` pure-decode steps to the running set (only after steady_decode_steps() allowed it)."""
        if self._plan is not None:
            raise RuntimeError("fast_forward() while a plan is outstanding")
        self._step += steps
        return self._progress(now, list(self._running.values()), set(finished_ids), steps, steps)

    # ------------------------------------------------------------------ internals
    def _class_of(self, req: SchedRequest) -> int:
        return req.effective_urgency if self._policy in ("pjf", "semantic") else 0

    def _worst_running_urgency(self) -> int:
        counts = self._running_counts
        for urgency in (4, 3, 2, 1, 0):
            if counts[urgency]:
                return urgency
        return -1

    def _key(self, req: SchedRequest) -> tuple:
        policy = self._policy
        if policy == "fcfs":
            return (req.arrival_time, req._seq)
        if policy == "sjf":
            return (req.predicted_remaining_work, req._seq)
        eff = req.effective_urgency
        aged = 1 if eff < req.urgency else 0  # aged requests queue behind native requests of their new class
        if policy == "pjf":
            return (eff, aged, req.arrival_time, req._seq)
        return (eff, aged, req.predicted_remaining_work, req._seq)

    def _admission_blocks(self, req: SchedRequest) -> int:
        """Blocks reserved when (re)admitting: the whole (re)prefill plus the next token."""
        tokens = max(req.computed_tokens, req._prefill_target) + 1
        return -(-tokens // self.config.kv_block_size)

    def _free_blocks(self) -> int:
        # one block of headroom per running request for decode growth
        return self.config.kv_device_blocks - self.kv_device_blocks_used - len(self._running)

    def _extra_blocks_to_admit(self, req: SchedRequest) -> int:
        return self._admission_blocks(req) - req._device_blocks

    def _apply_aging(self) -> None:
        heap = self._aging_heap
        while True:
            key = heap.peek_key()
            if key is None or key[0] > self._admissions:
                return
            req = heap.pop()
            req._aged_levels += 1
            if req._aged_levels < req.urgency:
                threshold = req._aging_base + (req._aged_levels + 1) * req._aging_interval
                heap.push(req.request_id, (threshold, req._seq), req)
            if req.request_id in self._waiting:
                self._waiting.push(req.request_id, self._key(req), req)

    def _admit_and_preempt(self, now: float, plan: StepPlan) -> None:
        cfg = self.config
        waiting, running = self._waiting, self._running
        preempted_now = ()  # ids preempted in this step (a set once there is one): not re-admitted in it
        while True:
            cand = waiting.peek()
            if cand is None or cand.request_id in preempted_now:
                return
            batch_full = len(running) >= cfg.max_batch_size
            if batch_full and not self._may_displace(cand):
                return  # the usual case in a busy step, decided without the KV check
            kv_short = self._extra_blocks_to_admit(cand) > self._free_blocks()
            if not batch_full and not kv_short:
                waiting.pop()
                self._waiting_counts[cand.urgency] -= 1
                self._admit(cand, now, plan)
                continue
            if kv_short and not batch_full and self._evict_kept(cand, now, plan):
                continue  # freed device blocks held by a paused request; re-check
            if not self._urgency_preemption:
                return
            victim = self._urgency_victim(cand, kv_short)
            if victim is None:
                return
            if kv_short:
                action = self._free_action(victim)
            elif len(self._kept) < cfg.max_batch_size:
                action = PreemptAction.KEEP  # only the batch slot is short: KV has room for both
            else:
                action = self._free_action(victim)
            self._preempt(victim, action, now, plan)
            if not preempted_now:
                preempted_now = set()
            preempted_now.add(victim.request_id)

    def _may_displace(self, cand: SchedRequest) -> bool:
        """Cheap necessary condition for urgency preemption: it is on and some running request may be
        strictly less urgent than cand (_urgency_victim makes the full choice)."""
        if not self._urgency_preemption:
            return False
        cand_class = cand.effective_urgency
        if cand_class >= 4:
            return False  # nothing is strictly less urgent than class 4
        return self._aging_on or cand_class < self._worst_running_urgency()

    def _urgency_victim(self, cand: SchedRequest, kv_short: bool):
        """Least urgent, longest-remaining running request strictly less urgent than cand, past its min run."""
        cand_class = cand.effective_urgency
        if cand_class >= 4:
            return None  # nothing is strictly less urgent than class 4
        if not self._aging_on and cand_class >= self._worst_running_urgency():
            return None  # fast path: no running request is strictly less urgent
        best = None
        best_key = None
        freeable = 0
        for req in self._running.values():
            if req.effective_urgency <= cand_class or req._runs_since_resume < self.config.min_run_steps:
                continue
            freeable += req._device_blocks
            key = (req.effective_urgency, req.predicted_remaining_work, req._seq)
            if best_key is None or key > best_key:
                best, best_key = req, key
        if best is not None and kv_short:
            # do not preempt at all if even every eligible victim together cannot make room
            freeable += sum(r._device_blocks for r in self._kept.values() if r is not cand)
            if self._extra_blocks_to_admit(cand) > self._free_blocks() + freeable:
                return None
        return best

    def _evict_kept(self, cand: SchedRequest, now: float, plan: StepPlan) -> bool:
        """Move the lowest-priority paused (KEEP) request's KV off the device."""
        victims = [r for r in self._kept.values() if r is not cand]
        if not victims:
            return False
        victim = max(victims, key=self._key)
        del self._kept[victim.request_id]
        action = self._free_action(victim)
        self._release_kv(victim, action)
        plan.preempt.append((victim, action))
        self._waiting.push(victim.request_id, self._key(victim), victim)  # re-key: RECOMPUTE adds prefill work
        return True

    def _free_action(self, req: SchedRequest) -> PreemptAction:
        """SWAP when host space exists and swapping is cheaper than recomputing, else RECOMPUTE."""
        cfg = self.config
        host_needed = -(-req.computed_tokens // cfg.kv_block_size)
        if req.computed_tokens > 0 and self.kv_host_blocks_used + host_needed <= cfg.kv_host_blocks \
                and cfg.swap_cost_per_token < cfg.recompute_cost_per_token:
            return PreemptAction.SWAP
        return PreemptAction.RECOMPUTE

    def _preempt(self, req: SchedRequest, action: PreemptAction, now: float, plan: StepPlan) -> None:
        del self._running[req.request_id]
        self._running_counts[req.urgency] -= 1
        req.state = "preempted"
        req.preemptions += 1
        req._preempted_at = now
        self.preemption_count += 1
        if action is PreemptAction.KEEP:
            self._kept[req.request_id] = req
        else:
            self._release_kv(req, action)
        plan.preempt.append((req, action))
        self._waiting.push(req.request_id, self._key(req), req)
        self._waiting_counts[req.urgency] += 1

    def _release_kv(self, req: SchedRequest, action: PreemptAction) -> None:
        self._free_device(req)
        if action is PreemptAction.SWAP:
            req._host_blocks = -(-req.computed_tokens // self.config.kv_block_size)
            self.kv_host_blocks_used += req._host_blocks
            req.kv_location = "host"
        else:
            req.computed_tokens = 0
            req._prefill_target = req.prompt_tokens + req.generated_tokens
            req.kv_location = "none"

    def _free_device(self, req: SchedRequest) -> None:
        self.kv_device_blocks_used -= req._device_blocks
        req._device_blocks = 0

    def _free_host(self, req: SchedRequest) -> None:
        self.kv_host_blocks_used -= req._host_blocks
        req._host_blocks = 0

    def _admit(self, req: SchedRequest, now: float, plan: StepPlan) -> None:
        self._kept.pop(req.request_id, None)
        if req.kv_location == "host":
            plan.swap_in.append(req)
            self._free_host(req)
        need = self._admission_blocks(req)
        if need > req._device_blocks:
            self.kv_device_blocks_used += need - req._device_blocks
            req._device_blocks = need
        req.kv_location = "device"
        req.state = "running"
        req._runs_since_resume = 0
        if req._preempted_at is not None:
            req.preempted_intervals.append((req._preempted_at, now))
            req._preempted_at = None
        self._running[req.request_id] = req
        self._running_counts[req.urgency] += 1
        self._admissions += 1

    def _ensure_decode_blocks(self, now: float, plan: StepPlan) -> tuple:
        """Grow each decoding request by a block when needed; preempt (freeing KV) if the device is full.
        Returns (decoding, prefilling) running requests, in running order, for _fill_batch (one scan, not two)."""
        cfg = self.config
        bs = cfg.kv_block_size
        capacity = cfg.kv_device_blocks
        while True:
            decoding, prefilling, growing = [], [], []
            extra = 0
            for req in self._running.values():
                computed = req.computed_tokens
                if computed >= req._prefill_target:
                    decoding.append(req)
                    if computed >= req._device_blocks * bs:  # the next token's KV needs another block
                        need = -(-(computed + 1) // bs)
                        extra += need - req._device_blocks
                        growing.append((req, need))
                else:
                    prefilling.append(req)
            if self.kv_device_blocks_used + extra <= capacity:
                break
            if self._kept:
                victim = max(self._kept.values(), key=self._key)
                del self._kept[victim.request_id]
                action = self._free_action(victim)
                self._release_kv(victim, action)
                plan.preempt.append((victim, action))
                self._waiting.push(victim.request_id, self._key(victim), victim)
                continue
            if len(self._running) <= 1:
                raise RuntimeError("a single request's KV cache outgrew the whole device capacity")
            victims = [r for r in self._running.values() if r._runs_since_resume >= cfg.min_run_steps]
            victim = max(victims or self._running.values(), key=self._key)
            self._preempt(victim, self._free_action(victim), now, plan)
        for req, need in growing:
            req._device_blocks = need
        self.kv_device_blocks_used += extra
        return decoding, prefilling

    def _fill_batch(self, plan: StepPlan, decoding: list, prefilling: list) -> None:
        """Decodes first (one token each), then prefill chunks in priority order under the token budget."""
        plan.decode.extend(decoding)
        budget = self.config.token_budget - len(decoding)
        if len(prefilling) > 1:
            prefilling.sort(key=self._key)
        for req in prefilling:
            if budget <= 0:
                break
            n = min(req._prefill_target - req.computed_tokens, budget)
            plan.prefill.append((req, n))
            budget -= n

    def _progress(self, now: float, reqs, finished_ids: set, steps: int, new_tokens: int) -> list:
        """Record that each running request in reqs ran `steps` more steps and generated `new_tokens` more
        tokens (reserving device blocks for their KV), then stamp first tokens, finish requests (EOS in
        finished_ids or max_output_tokens reached) and re-estimate lengths. Returns the finished requests.

        One pass per request serves both complete_step (decodes: 1 step, 1 token; prefills: counters already
        advanced, 0 tokens) and fast_forward (`steps` of each) because this runs for every request every step."""
        bs = self.config.kv_block_size
        used_before = self.kv_device_blocks_used
        grown = 0
        finished = []
        for req in reqs:
            if req.state != "running":
                continue  # cancelled mid-step
            if new_tokens:
                computed = req.computed_tokens + new_tokens
                req.computed_tokens = computed
                if computed > req._device_blocks * bs:
                    need = -(-computed // bs)
                    grown += need - req._device_blocks
                    req._device_blocks = need
                req.generated_tokens = generated = req.generated_tokens + new_tokens
            else:
                generated = req.generated_tokens
            req._runs_since_resume += steps
            if req.first_token_time is None and generated > 0:
                req.first_token_time = now
            if req.request_id in finished_ids or (req.max_output_tokens is not None
                                                  and generated >= req.max_output_tokens):
                self._finish(req, now)
                finished.append(req)
            elif generated >= req._est_output:
                factor = self.config.reestimate_factor
                while req.generated_tokens >= req._est_output:  # ran past its prediction: re-estimate
                    req._est_output = max(req.generated_tokens + 1, math.ceil(req._est_output * factor))
        if grown:
            self.kv_device_blocks_used += grown
            if used_before + grown > self.config.kv_device_blocks:  # the reservation before any finished
                raise RuntimeError("fast_forward exceeded KV capacity; steady_decode_steps() was not respected")
        return finished

    def _finish(self, req: SchedRequest, now: float) -> None:
        del self._running[req.request_id]
        self._running_counts[req.urgency] -= 1
        self._requests.pop(req.request_id, None)
        if self._aging_on:
            self._aging_heap.remove(req.request_id)
        self._free_device(req)
        req.kv_location = "none"
        req.state = "finished"
        req.finish_time = now
