"""Aging: a waiting request of urgency u gains one level each b * max(Q, 1) / u admissions (b = aging_bound,
Q = requests waiting ahead of it when it arrived), so within b times its FCFS admission position it reaches the
most urgent level. Time is counted in admissions, which keeps the rule clock-free (docs/scheduler.md).
deadline_aging.py is the same idea in seconds against each class's target.

Promotions are due at known admission counts (or times), so a LazyHeap keyed by the next one makes each O(log n).
"""
from __future__ import annotations

from .queues import LazyHeap
from .urgency import MOST_URGENT


class Promotions:
    """Each tracked request's next promotion, in a LazyHeap keyed by when it is due on the subclass's clock."""

    __slots__ = ("_due",)

    def __init__(self) -> None:
        self._due = LazyHeap()  # request id -> (when its next promotion is due, arrival_seq)

    def _next_due(self, req) -> float:
        raise NotImplementedError

    def _schedule_next(self, req) -> None:
        self._due.push(req.request_id, (self._next_due(req), req.arrival_seq), req)

    def forget(self, request_id) -> None:
        self._due.remove(request_id)

    def _promote_until(self, clock: float):
        """Promote every request whose next promotion is due by `clock`, yielding each (its priority key changed)."""
        due = self._due
        while True:
            key = due.peek_key()
            if key is None or key[0] > clock:
                return
            req = due.pop()
            req.aged_levels += 1
            if req.aged_levels < req.urgency:
                self._schedule_next(req)
            yield req


class Aging(Promotions):
    __slots__ = ("_bound",)

    def __init__(self, aging_bound: float) -> None:
        super().__init__()
        self._bound = aging_bound

    def _next_due(self, req) -> float:
        return req.admissions_at_arrival + (req.aged_levels + 1) * req.admissions_per_level

    def track(self, req, waiting_ahead: int, admissions: int) -> None:
        """Start aging a request that has just been queued behind `waiting_ahead` others."""
        if req.urgency == MOST_URGENT:
            return  # nothing to gain
        req.admissions_at_arrival = admissions
        req.admissions_per_level = self._bound * max(waiting_ahead, 1) / req.urgency
        self._schedule_next(req)

    def admitted(self, request_id) -> None:
        """Admission-count aging goes on while a request runs (it may be preempted and wait again)."""

    def promote_due(self, admissions: int, now: float):
        """`now` is unused: this rule counts admissions."""
        return self._promote_until(admissions)
