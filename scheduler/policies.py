"""Priority keys, one per policy: the smaller key is served first.

Every key ends in the request's unique `arrival_seq`, so ties are deterministic and LazyHeap comparisons never
reach past the key. The function is chosen once per Scheduler, not branched on for every heap push.
"""
from __future__ import annotations

from .config import POLICIES


def fcfs_key(req) -> tuple:
    return (req.arrival_time, req.arrival_seq)


def sjf_key(req) -> tuple:
    return (req.predicted_remaining_work, req.arrival_seq)


def pjf_key(req) -> tuple:
    urgency = req.effective_urgency
    aged = 1 if urgency < req.urgency else 0  # aged requests queue behind native requests of their new class
    return (urgency, aged, req.arrival_time, req.arrival_seq)


def semantic_key(req) -> tuple:
    urgency = req.effective_urgency
    aged = 1 if urgency < req.urgency else 0
    return (urgency, aged, req.predicted_remaining_work, req.arrival_seq)


PRIORITY_KEYS = {"fcfs": fcfs_key, "sjf": sjf_key, "pjf": pjf_key, "semantic": semantic_key}
assert tuple(PRIORITY_KEYS) == POLICIES

URGENCY_POLICIES = ("pjf", "semantic")  # the policies that rank by urgency, and so can age
