"""The simulator's fast-forward: skip runs of identical pure-decode steps exactly.

Most simulated steps decode the same batch again. When nothing can change for m steps (no admission, no urgency
preemption, KV growth fits, no cap reached), the simulator applies the m steps at once and adds up their costs
with the same floating-point operations in the same order as stepping, so the result is bit-identical
(test_fast_forward_is_identical_to_stepping). The engine never fast-forwards, so this lives here, not in Scheduler.
"""
from __future__ import annotations

from bisect import bisect_left
from functools import reduce
from itertools import accumulate
from operator import add, mul

from .blocks import blocks_for
from .core import Scheduler


class FastForwardScheduler(Scheduler):
    """A Scheduler that can also apply many steady pure-decode steps at once."""

    def steady_decode_steps(self, limit: int) -> int:
        """How many further steps (<= limit) schedule() is guaranteed to plan as the same pure-decode batch
        when nothing is added, cancelled or re-prioritised. 0 when unsure."""
        if self._plan is not None or not self._running or limit <= 0:
            return 0
        running = self._running.values()
        for req in running:
            if req.computed_tokens < req.prefill_target:
                return 0
            cap = req.max_output_tokens
            if cap is not None and cap - req.generated_tokens < limit:
                limit = cap - req.generated_tokens
        cap = self._batch_cap()
        if len(self._running) > cap:
            return 0  # schedule() shrinks the batch first
        if len(self._waiting):
            if len(self._running) < cap:
                return 0  # admission blocked only by KV: let the full logic decide
            if self._urgency_preemption:
                top = self._waiting.peek()
                worst = max(r.effective_urgency for r in running) if self._aging_on else self._worst_running_urgency()
                if top.effective_urgency < worst:
                    return 0
            if self._within_class:
                limit = self._steps_before_within_class_displacement(self._waiting.peek(), limit)
        if limit <= 0:
            return 0
        # KV: every step may grow each request by a block; find the largest m that fits.
        bs = self.config.kv_block_size
        free_total = self._blocks.device_unreserved()

        if free_total >= len(self._running) * (limit // bs + 1):
            return limit  # even worst-case growth of every request fits

        def extra(m: int) -> int:
            return sum(max(0, blocks_for(r.computed_tokens + m, bs) - r.device_blocks) for r in running)

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

    def _steps_before_within_class_displacement(self, top, limit: int) -> int:
        """At most `limit` steps in which no running request of top's class can become its victim: a request
        whose work already clears the gain stops the run when its minimum run is reached (0: now), and one whose
        prediction may be re-estimated upwards (when its generated tokens reach it) stops the run there."""
        cfg = self.config
        top_class = self._preemption_class(top)
        need = top.predicted_remaining_work + cfg.within_class_min_gain
        for req in self._running.values():
            if req.effective_urgency != top_class:
                continue
            if req.predicted_remaining_work >= need:
                limit = min(limit, max(0, cfg.within_class_min_run - req.steps_since_resume))
            limit = min(limit, max(0, req.estimated_output_tokens - req.generated_tokens - 1))
        return limit

    def fast_forward(self, steps: int, now: float, finished_ids=()) -> list:
        """Apply `steps` pure-decode steps to the running set (only after steady_decode_steps() allowed it)."""
        if self._plan is not None:
            raise RuntimeError("fast_forward() while a plan is outstanding")
        return self._progress(now, list(self._running.values()), set(finished_ids), steps, steps)


def skip_steady_steps(sched: FastForwardScheduler, t: float, next_ready, c1d: float, c2d: float, block_size: int,
                      totals, record_timeline) -> float:
    """Skip steady pure-decode steps up to the next arrival or finish, adding them to `totals` (the simulator's
    RunTotals). Returns the new t.

    Bit-identical to stepping: every skipped step's cost is c2d + c1d * context (the context an int), and
    t, busy time and the KV integral are running sums added one step at a time in step order, as in
    RunTotals.add_step; accumulate/reduce only move those same float additions into C loops."""
    running = sched.running
    if not running:
        return t
    to_eos = [r.eos_tokens - r.generated_tokens for r in running]  # tokens each still has to generate
    limit = min(to_eos)
    m = sched.steady_decode_steps(limit)
    if m <= 0:
        return t
    k = len(running)
    computed = [r.computed_tokens for r in running]
    base_context = sum(computed) + k  # each request's context including the token it generates
    step_costs = [c2d + c1d * context for context in range(base_context, base_context + k * m, k)]
    if next_ready is None:
        taken = m
        t = reduce(add, step_costs, t)
    else:
        # step j runs only if the next arrival is still in the future when it starts (times[j] < next_ready)
        times = list(accumulate(step_costs, initial=t))
        taken = bisect_left(times, next_ready, 0, m)
        t = times[taken]
        del step_costs[taken:]
    if not taken:
        return t
    # Reserved device blocks during each step: stepping grows request r by a block before the steps
    # first_r, first_r + block_size, ... (first_r = unused token slots of its reservation).
    firsts = [r.device_blocks * block_size - c for r, c in zip(running, computed)]
    used = [0] * taken
    used[0] = sched.kv_device_blocks_used
    if taken <= block_size and min(firsts) >= 0:  # the usual case: at most one new block per request
        for first in firsts:
            if first < taken:
                used[first] += 1
    else:
        for first in firsts:
            for j in range(first % block_size if first < 0 else first, taken, block_size):
                used[j] += 1
    used = list(accumulate(used))
    totals.kv_integral = reduce(add, map(mul, used, step_costs), totals.kv_integral)
    if used[-1] > totals.kv_max:  # used never decreases while fast-forwarding
        totals.kv_max = used[-1]
    totals.busy_time = reduce(add, step_costs, totals.busy_time)
    totals.steps += taken
    totals.batch_sum += taken * k
    totals.tokens_out += taken * k
    if taken < limit:
        finished = ()
    elif to_eos.count(limit) == 1:  # the usual case: one request reached its EOS
        finished = (running[to_eos.index(limit)].request_id,)
    else:
        finished = [r.request_id for r, n in zip(running, to_eos) if n <= taken]
    done_now = sched.fast_forward(taken, t, finished)
    if done_now:  # queue lengths only change when something finished
        totals.done += len(done_now)
        record_timeline(t)
    return t
