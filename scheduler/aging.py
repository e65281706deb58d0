"""Aging: a waiting request of urgency u gains one level each b * max(Q, 1) / u admissions (b = aging_bound,
Q = requests waiting ahead of it when it arrived), so within b times its FCFS admission position it reaches the
most urgent level. Time is counted in admissions, which keeps the rule clock-free (docs/scheduler.md).

Promotions are due at known admission counts, so a LazyHeap keyed by the next one makes each O(log n).
"""
from __future__ import annotations

from .queues import LazyHeap
from .urgency import MOST_URGENT


class Aging:
    __slots__ = ("_bound", "_due")

    def __init__(self, aging_bound: float) -> None:
        self._bound = aging_bound
        self._due = LazyHeap()  # request id -> (admission count of its next promotion, arrival_seq)

    def track(self, req, waiting_ahead: int, admissions: int) -> None:
        """Start aging a request that has just been queued behind `waiting_ahead` others."""
        if req.urgency == MOST_URGENT:
            return  # nothing to gain
        req.admissions_at_arrival = admissions
        req.admissions_per_level = self._bound * max(waiting_ahead, 1) / req.urgency
        self._due.push(req.request_id, (admissions + req.admissions_per_level, req.arrival_seq), req)

    def forget(self, request_id) -> None:
        self._due.remove(request_id)

    def promote_due(self, admissions: int):
        """Promote every request whose next promotion is due, yielding each (its priority key changed)."""
        due = self._due
        while True:
            key = due.peek_key()
            if key is None or key[0] > admissions:
                return
            req = due.pop()
            req.aged_levels += 1
            if req.aged_levels < req.urgency:
                next_due = req.admissions_at_arrival + (req.aged_levels + 1) * req.admissions_per_level
                due.push(req.request_id, (next_due, req.arrival_seq), req)
            yield req
