"""The Scheduler: decides every step which requests run, shared by the inference worker and the simulator.

Data structures (why): waiting and preempted requests live in one LazyHeap keyed by the policy's priority
tuple (policies.py), so add / cancel / set_urgency are O(log n). Running requests are a dict of at most
max_batch_size entries, so victim selection is O(k). Choosing a batch pops at most k requests: O(k log n).
Aging (aging.py) keeps its own heap of due promotions; KV blocks are counted in one BlockLedger (blocks.py).
"""
from __future__ import annotations

import math

from .aging import Aging
from .deadline_aging import DeadlineAging
from .blocks import BlockLedger, blocks_for
from .config import SchedulerConfig
from .plan import PreemptAction, StepPlan
from .policies import PRIORITY_KEYS, URGENCY_POLICIES
from .queues import LazyHeap
from .request import KVLocation, RequestState, SchedRequest
from .urgency import LEAST_URGENT, LEVELS, MOST_URGENT, is_level, per_level

_LEAST_URGENT_FIRST = LEVELS[::-1]


class Scheduler:
    """Continuous-batching scheduler for fcfs / sjf / pjf / semantic policies (see docs/scheduler.md)."""

    def __init__(self, config: SchedulerConfig, prefix_hit=None) -> None:
        config.validate()
        self.config = config
        # engine hook, prefix_hit(req) -> prompt tokens whose KV it already holds (a multiple of the block
        # size, < req.prefill_target): a fresh (re)prefill starts there (see _skip_cached_prefixes)
        self.prefix_hit = prefix_hit
        self._key = PRIORITY_KEYS[config.policy]
        self._urgency_preemption = config.preemption and config.policy == "semantic"
        self._within_class = config.within_class_preemption and config.policy == "semantic"
        self._aging_on = config.aging and config.policy in URGENCY_POLICIES
        self._aging = DeadlineAging(config.deadline_targets, config.deadline_share) \
            if config.aging_mode == "deadline" else Aging(config.aging_bound)
        # deadline aging bounds waiting without granting preemption: an aged request displaces nothing
        self._aged_may_preempt = config.aging_mode != "deadline"
        self._blocks = BlockLedger(config.kv_block_size, config.kv_device_blocks, config.kv_host_blocks)
        self._requests: dict = {}          # every unfinished request by id
        self._waiting = LazyHeap()         # waiting + preempted
        self._running: dict = {}           # id -> request holding a batch slot
        self._kept: dict = {}              # preempted with KEEP: paused, KV still on device
        self._arrivals = 0
        self._admissions = 0
        self._plan: StepPlan | None = None
        self.preemption_count = 0
        self._waiting_counts = per_level()  # waiting/preempted requests per (assigned) urgency
        self._running_counts = per_level()  # running requests per (assigned) urgency

    # ------------------------------------------------------------------ public operations
    def add(self, req: SchedRequest) -> None:
        """Queue a new request. O(log n)."""
        if req.request_id in self._requests:
            raise ValueError(f"request_id {req.request_id!r} is already queued")
        if req.state is not RequestState.WAITING or req.generated_tokens or req.computed_tokens:
            raise ValueError(f"request {req.request_id!r} is not fresh (state={req.state.value})")
        need = self._blocks.admission_blocks(req)
        if need > self.config.kv_device_blocks:
            raise ValueError(f"request {req.request_id!r} needs {need} KV blocks for its prompt but the device "
                             f"has only {self.config.kv_device_blocks}")
        self._arrivals += 1
        req.arrival_seq = self._arrivals
        req.prefill_token_weight = self.config.prefill_token_weight
        self._requests[req.request_id] = req
        if self._aging_on:
            self._aging.track(req, len(self._waiting), self._admissions)
        self._waiting.push(req.request_id, self._key(req), req)
        self._waiting_counts[req.urgency] += 1

    def cancel(self, request_id):
        """Drop a request wherever it is; frees its KV accounting. O(log n). Returns it or None."""
        req = self._requests.pop(request_id, None)
        if req is None:
            return None
        if self._waiting.remove(request_id) is not None:
            self._waiting_counts[req.urgency] -= 1
        self._aging.forget(request_id)
        if self._running.pop(request_id, None) is not None:
            self._running_counts[req.urgency] -= 1
        self._kept.pop(request_id, None)
        self._blocks.free_device(req)
        self._blocks.free_host(req)
        req.kv_location = KVLocation.NONE
        req.state = RequestState.FINISHED
        req.cancelled = True
        return req

    def set_urgency(self, request_id, urgency: int) -> None:
        """Re-prioritise one request (e.g. clinician override). O(log n); effective at the next schedule()."""
        if not is_level(urgency):
            raise ValueError(f"urgency must be an integer {MOST_URGENT}..{LEAST_URGENT}, got {urgency!r}")
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
        """Waiting + preempted requests per assigned urgency level (O(1), for queue-length timelines)."""
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

    @property
    def kv_device_blocks_used(self) -> int:
        """Device blocks reserved (blocks.py); at most config.kv_device_blocks after every schedule()."""
        return self._blocks.device_used

    @property
    def kv_host_blocks_used(self) -> int:
        return self._blocks.host_used

    def blocks_needed(self, req: SchedRequest) -> int:
        """Device blocks a request's current KV occupies: ceil(computed_tokens / kv_block_size)."""
        return self._blocks.computed_blocks(req)

    def queue_order(self) -> list:
        """Running first (in priority order), then waiting/preempted in the order they would be served."""
        running = sorted(self._running.values(), key=self._key)
        return [r.request_id for r in running] + [r.request_id for r in self._waiting.ordered_items()]

    # ------------------------------------------------------------------ the step
    def schedule(self, now: float) -> StepPlan:
        """Choose this step's batch. O(k log n) plus O(k^2) for victim scans (k = max_batch_size)."""
        if self._plan is not None:
            raise RuntimeError("complete_step() must be called before the next schedule()")
        if self._aging_on:
            self._apply_aging(now)
        plan = StepPlan()
        if len(self._waiting):
            self._admit_and_preempt(now, plan)
        if self.config.urgent_batch_size is not None:
            self._shrink_batch(now, plan)
        decoding, prefilling = self._ensure_decode_blocks(now, plan)
        if self.prefix_hit is not None:
            self._skip_cached_prefixes(prefilling)
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
        running_state = RequestState.RUNNING  # a local: an Enum member lookup costs ~70 ns on Python 3.11
        prefilled = []
        for req, n in plan.prefill:
            if req.state is not running_state:
                continue  # cancelled mid-step
            req.computed_tokens += n
            if req.computed_tokens >= req.prefill_target:
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

    # ------------------------------------------------------------------ admission and preemption
    def _worst_running_urgency(self) -> int:
        counts = self._running_counts
        for urgency in _LEAST_URGENT_FIRST:
            if counts[urgency]:
                return urgency
        return -1

    def _batch_cap(self, cand: SchedRequest | None = None) -> int:
        """How many requests may run (with `cand`: how many may run for it to be admitted without displacing).

        max_batch_size; but while a request of assigned urgency 0 runs or waits, urgent_batch_size, raised to
        the number of running class-0 requests. Why: on a CPU decoding is compute-bound, so every request in the
        batch slows every other, and a small batch gives the life-threatening answer the cores. Requests of class
        0 (native, or aged up to it) are never held back by it, only by max_batch_size: so aging still bounds
        every request's wait (a lower class starves only without aging, as it would anyway). Aged requests do
        not shrink the batch: aging bounds waiting, it does not make a request an emergency."""
        cfg = self.config
        cap = cfg.urgent_batch_size
        if cap is None or (cand is not None and cand.effective_urgency == MOST_URGENT) \
                or not (self._running_counts[MOST_URGENT] or self._waiting_counts[MOST_URGENT]):
            return cfg.max_batch_size
        top_class = sum(1 for r in self._running.values() if r.effective_urgency == MOST_URGENT)
        return min(cfg.max_batch_size, max(cap, top_class))

    def _shrink_batch(self, now: float, plan: StepPlan) -> None:
        """Pause the lowest-priority running requests past their minimum run until at most _batch_cap() run.
        KEEP: their KV stays on the device for a cheap resume, and a paused request holds no compute.

        An arriving urgency-0 request displaces one request to be admitted (_admit_and_preempt); this pauses
        the rest, and also shrinks the batch when an override makes a running request urgency 0."""
        excess = len(self._running) - self._batch_cap()
        if excess <= 0:
            return
        eligible = [r for r in self._running.values() if r.steps_since_resume >= self.config.min_run_steps]
        eligible.sort(key=self._key, reverse=True)
        for victim in eligible[:excess]:
            self._preempt(victim, PreemptAction.KEEP, now, plan)

    def _apply_aging(self, now: float) -> None:
        waiting = self._waiting
        for req in self._aging.promote_due(self._admissions, now):
            if req.request_id in waiting:
                waiting.push(req.request_id, self._key(req), req)

    def _free_blocks(self) -> int:
        """Unreserved device blocks less one block of headroom per running request for decode growth."""
        return self._blocks.device_unreserved() - len(self._running)

    def _extra_blocks_to_admit(self, req: SchedRequest) -> int:
        return self._blocks.admission_blocks(req) - req.device_blocks

    def _admit_and_preempt(self, now: float, plan: StepPlan) -> None:
        cfg = self.config
        waiting, running = self._waiting, self._running
        preempted_now = ()  # ids preempted in this step (a set once there is one): not re-admitted in it
        while True:
            cand = waiting.peek()
            if cand is None or cand.request_id in preempted_now:
                return
            batch_full = len(running) >= self._batch_cap(cand)
            if batch_full and not self._may_displace(cand):
                return  # the usual case in a busy step, decided without the KV check
            kv_short = self._extra_blocks_to_admit(cand) > self._free_blocks()
            if not batch_full and not kv_short:
                waiting.pop()
                self._waiting_counts[cand.urgency] -= 1
                self._admit(cand, now, plan)
                continue
            if kv_short and not batch_full and self._evict_kept(plan, spare=cand):
                continue  # freed device blocks held by a paused request; re-check
            victim = self._urgency_victim(cand, kv_short) if self._urgency_preemption else None
            if victim is None and self._within_class and not kv_short:
                victim = self._within_class_victim(cand)
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
        strictly less urgent than cand (_urgency_victim makes the full choice), or within-class preemption is on."""
        if self._within_class:
            return True
        if not self._urgency_preemption:
            return False
        cand_class = self._preemption_class(cand)
        if cand_class >= LEAST_URGENT:
            return False  # nothing is strictly less urgent than the least urgent level
        return self._aging_on or cand_class < self._worst_running_urgency()

    def _preemption_class(self, cand: SchedRequest) -> int:
        """The class cand preempts as: its effective class, or under deadline aging its assigned one."""
        return cand.effective_urgency if self._aged_may_preempt else cand.urgency

    def _urgency_victim(self, cand: SchedRequest, kv_short: bool):
        """Least urgent, longest-remaining running request strictly less urgent than cand, past its min run; none
        while only the batch slot is short and a running request is predicted to finish within preemption_min_wait."""
        cand_class = self._preemption_class(cand)
        if cand_class >= LEAST_URGENT:
            return None  # nothing is strictly less urgent than the least urgent level
        if not self._aging_on and cand_class >= self._worst_running_urgency():
            return None  # fast path: no running request is strictly less urgent
        best = None
        best_key = None
        freeable = 0
        soonest_free = float("inf")
        for req in self._running.values():
            soonest_free = min(soonest_free, req.predicted_remaining_work)
            if req.effective_urgency <= cand_class or req.steps_since_resume < self.config.min_run_steps:
                continue
            freeable += req.device_blocks
            key = (req.effective_urgency, req.predicted_remaining_work, req.arrival_seq)
            if best_key is None or key > best_key:
                best, best_key = req, key
        if not kv_short and soonest_free <= self.config.preemption_min_wait:
            return None  # a slot frees within that much work: waiting for it costs the candidate little
        if best is not None and kv_short:
            # do not preempt at all if even every eligible victim together cannot make room
            freeable += sum(r.device_blocks for r in self._kept.values() if r is not cand)
            if self._extra_blocks_to_admit(cand) > self._free_blocks() + freeable:
                return None
        return best

    def _within_class_victim(self, cand: SchedRequest):
        """The running request of cand's class with the most predicted remaining work, when it exceeds cand's by
        at least within_class_min_gain tokens and it has run within_class_min_run steps since it (re)started.

        Why the two bounds: the paper's code re-ranks the batch every step, so two requests of one class whose
        remaining work is close swap places over and over, each swap paying a KV move; a minimum gain lets only
        clearly shorter work in, and a minimum run lets the displaced request make progress before it can be
        displaced again."""
        cfg = self.config
        cand_class = self._preemption_class(cand)
        need = cand.predicted_remaining_work + cfg.within_class_min_gain
        best, best_key = None, None
        for req in self._running.values():
            if req.effective_urgency != cand_class or req.steps_since_resume < cfg.within_class_min_run:
                continue
            work = req.predicted_remaining_work
            if work >= need and (best_key is None or (work, req.arrival_seq) > best_key):
                best, best_key = req, (work, req.arrival_seq)
        return best

    def _evict_kept(self, plan: StepPlan, spare: SchedRequest | None = None) -> bool:
        """Move the lowest-priority paused (KEEP) request but `spare` off the device; False when there is none."""
        victims = [r for r in self._kept.values() if r is not spare]
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
        if req.computed_tokens > 0 and self._blocks.host_has_room_for(req) \
                and cfg.swap_cost_per_token < cfg.recompute_cost_per_token:
            return PreemptAction.SWAP
        return PreemptAction.RECOMPUTE

    def _preempt(self, req: SchedRequest, action: PreemptAction, now: float, plan: StepPlan) -> None:
        del self._running[req.request_id]
        self._running_counts[req.urgency] -= 1
        req.state = RequestState.PREEMPTED
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
        if action is PreemptAction.SWAP:
            self._blocks.move_to_host(req)
            req.kv_location = KVLocation.HOST
        else:
            self._blocks.free_device(req)
            req.computed_tokens = 0
            req.prefill_target = req.prompt_tokens + req.generated_tokens
            req.kv_location = KVLocation.NONE

    def _admit(self, req: SchedRequest, now: float, plan: StepPlan) -> None:
        self._kept.pop(req.request_id, None)
        if req.kv_location is KVLocation.HOST:
            plan.swap_in.append(req)
            self._blocks.free_host(req)
        self._blocks.reserve_device(req, self._blocks.admission_blocks(req))
        req.kv_location = KVLocation.DEVICE
        req.state = RequestState.RUNNING
        req.steps_since_resume = 0
        if req._preempted_at is not None:
            req.preempted_intervals.append((req._preempted_at, now))
            req._preempted_at = None
        self._running[req.request_id] = req
        self._running_counts[req.urgency] += 1
        self._admissions += 1
        if self._aging_on:
            self._aging.admitted(req.request_id)

    # ------------------------------------------------------------------ batch and progress
    def _skip_cached_prefixes(self, prefilling: list) -> None:
        """A (re)prefill that has not started asks the engine's prefix cache how many of its leading tokens it
        already holds and starts after them, so they cost neither compute nor token budget.

        Asked after this step's preemptions, so no hit is undone within the step. The device reservation stays
        the request's full need (admission_blocks), as if nothing were shared: sharing only leaves blocks
        unused, so the engine never runs out of blocks for what was admitted."""
        prefix_hit = self.prefix_hit
        for req in prefilling:
            if req.computed_tokens == 0:
                hit = prefix_hit(req)
                assert 0 <= hit < req.prefill_target, (req, hit)
                req.computed_tokens = hit

    def _ensure_decode_blocks(self, now: float, plan: StepPlan) -> tuple:
        """Grow each decoding request by a block when needed; preempt (freeing KV) if the device is full.
        Returns (decoding, prefilling) running requests, in running order, for _fill_batch (one scan, not two)."""
        cfg = self.config
        bs = cfg.kv_block_size
        blocks = self._blocks
        while True:
            decoding, prefilling, growing = [], [], []
            extra = 0
            for req in self._running.values():
                computed = req.computed_tokens
                if computed >= req.prefill_target:
                    decoding.append(req)
                    if computed >= req.device_blocks * bs:  # the next token's KV needs another block
                        need = blocks_for(computed + 1, bs)
                        extra += need - req.device_blocks
                        growing.append((req, need))
                else:
                    prefilling.append(req)
            if extra <= blocks.device_unreserved():
                break
            if self._evict_kept(plan):
                continue
            if len(self._running) <= 1:
                raise RuntimeError("a single request's KV cache outgrew the whole device capacity")
            victims = [r for r in self._running.values() if r.steps_since_resume >= cfg.min_run_steps]
            victim = max(victims or self._running.values(), key=self._key)
            self._preempt(victim, self._free_action(victim), now, plan)
        for req, need in growing:
            blocks.reserve_device(req, need)
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
            n = min(req.prefill_target - req.computed_tokens, budget)
            plan.prefill.append((req, n))
            budget -= n

    def _progress(self, now: float, reqs, finished_ids: set, steps: int, new_tokens: int) -> list:
        """Record that each running request in reqs ran `steps` more steps and generated `new_tokens` more
        tokens (reserving device blocks for their KV), then stamp first tokens, finish requests (EOS in
        finished_ids or max_output_tokens reached) and re-estimate lengths. Returns the finished requests.

        One pass per request serves both complete_step (decodes: 1 step, 1 token; prefills: counters already
        advanced, 0 tokens) and fast_forward (`steps` of each) because this runs for every request every step;
        for the same reason block growth is counted inline here rather than through BlockLedger calls."""
        bs = self.config.kv_block_size
        blocks = self._blocks
        used_before = blocks.device_used
        grown = 0
        finished = []
        running_state = RequestState.RUNNING  # a local: an Enum member lookup costs ~70 ns on Python 3.11
        for req in reqs:
            if req.state is not running_state:
                continue  # cancelled mid-step
            if new_tokens:
                computed = req.computed_tokens + new_tokens
                req.computed_tokens = computed
                if computed > req.device_blocks * bs:
                    need = blocks_for(computed, bs)
                    grown += need - req.device_blocks
                    req.device_blocks = need
                req.generated_tokens = generated = req.generated_tokens + new_tokens
            else:
                generated = req.generated_tokens
            req.steps_since_resume += steps
            if req.first_token_time is None and generated > 0:
                req.first_token_time = now
            if req.request_id in finished_ids or (req.max_output_tokens is not None
                                                  and generated >= req.max_output_tokens):
                self._finish(req, now)
                finished.append(req)
            elif generated >= req.estimated_output_tokens:
                factor = self.config.reestimate_factor
                while req.generated_tokens >= req.estimated_output_tokens:  # ran past its prediction: re-estimate
                    req.estimated_output_tokens = max(req.generated_tokens + 1,
                                                      math.ceil(req.estimated_output_tokens * factor))
        if grown:
            blocks.device_used += grown
            if used_before + grown > blocks.device_capacity:  # the reservation before any finished
                raise RuntimeError("fast_forward exceeded KV capacity; steady_decode_steps() was not respected")
        return finished

    def _finish(self, req: SchedRequest, now: float) -> None:
        del self._running[req.request_id]
        self._running_counts[req.urgency] -= 1
        self._requests.pop(req.request_id, None)
        if self._aging_on:
            self._aging.forget(req.request_id)
        self._blocks.free_device(req)
        req.kv_location = KVLocation.NONE
        req.state = RequestState.FINISHED
        req.finish_time = now
