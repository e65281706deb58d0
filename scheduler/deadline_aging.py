"""Deadline-aware aging: a waiting request is promoted as its wait approaches its class's clinical target.

A request of urgency u >= 1 gains one level at arrival + j * share * target[u] / u, j = 1..u: it is in class 0
by `share` (default 0.75, the board's "near") of its first-token target, with the rest of the target left
to be served there. Same interface as Aging (aging.py), which counts admissions instead of seconds.
"""
from __future__ import annotations

from .aging import Promotions
from .urgency import MOST_URGENT


class DeadlineAging(Promotions):
    __slots__ = ("_targets", "_share")

    def __init__(self, targets, share: float) -> None:
        super().__init__()
        self._targets = targets
        self._share = share

    def _next_due(self, req) -> float:
        step = self._share * self._targets[req.urgency] / req.urgency
        return req.arrival_time + (req.aged_levels + 1) * step

    def track(self, req, waiting_ahead: int, admissions: int) -> None:
        if req.urgency != MOST_URGENT:
            self._schedule_next(req)

    def admitted(self, request_id) -> None:
        """The target is for the first token: once admitted a request ages no further (it keeps its class)."""
        self.forget(request_id)

    def promote_due(self, admissions: int, now: float):
        return self._promote_until(now)
