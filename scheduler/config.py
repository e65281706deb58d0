"""Scheduler configuration, validated up front so bad values fail loudly at construction."""
from __future__ import annotations

from dataclasses import dataclass

from .targets import FIRST_TOKEN_TARGET_SECONDS, NEAR_SHARE
from .urgency import NUM_LEVELS

POLICIES = ("fcfs", "sjf", "pjf", "semantic")
AGING_MODES = ("admissions", "deadline")  # aging.py counts admissions, deadline_aging.py seconds against targets


@dataclass
class SchedulerConfig:
    """All knobs of one Scheduler. Invalid values raise ValueError naming the field."""

    policy: str = "semantic"
    max_batch_size: int = 16
    urgent_batch_size: int | None = None  # batch cap while an urgency-0 request runs or waits (None: no cap)
    token_budget: int = 2048          # max tokens (prefill chunks + decodes) per step
    kv_block_size: int = 16
    kv_device_blocks: int = 10_000    # device KV capacity in blocks
    kv_host_blocks: int = 0           # host (swap) KV capacity in blocks
    aging: bool = False
    aging_bound: float = 2.0          # multiple of the FCFS admission position, see docs
    aging_mode: str = "admissions"    # or "deadline": promoted as the wait nears the class's target
    deadline_targets: tuple = FIRST_TOKEN_TARGET_SECONDS  # seconds to first token per level (deadline mode)
    deadline_share: float = NEAR_SHARE  # deadline mode: in class 0 by this share of the class's target
    swap_cost_per_token: float = 2e-4       # seconds to swap one token out and back in
    recompute_cost_per_token: float = 1.1e-4  # seconds to re-prefill one token
    preemption: bool = True           # urgency preemption (semantic policy only)
    # urgency preemption waits instead while some running request is predicted to finish within this much work
    # (output tokens, i.e. decode steps): its slot frees almost at once, and displacing a long request for so
    # little costs the displaced one far more (docs/scheduler.md, "Preemption only when it pays"). 0: always preempt
    preemption_min_wait: float = 0.0
    min_run_steps: int = 1            # anti-thrashing: steps a resumed request runs before it may be displaced
    # semantic only: the waiting head displaces the running request of its own class with the most remaining
    # work, when that saves at least within_class_min_gain output tokens of predicted work and the displaced one has run
    # within_class_min_run steps since it (re)started (anti-thrashing; docs/scheduler.md)
    within_class_preemption: bool = False
    within_class_min_gain: int = 32
    within_class_min_run: int = 8
    reestimate_factor: float = 1.5    # new predicted length = generated * factor when exceeded
    # a prompt token's machine time over an output token's: how much a waiting prompt adds to remaining work
    # (SchedRequest.predicted_remaining_work). 1.0 counts prompt and output tokens alike; the simulator derives
    # it from the cost model (A100_4B, batch 16: 0.14) and the engine from its device (inference_worker/build.py)
    prefill_token_weight: float = 1.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        _positive_int("max_batch_size", self.max_batch_size)
        if self.urgent_batch_size is not None:
            _positive_int("urgent_batch_size", self.urgent_batch_size)
        _positive_int("token_budget", self.token_budget)
        _positive_int("kv_block_size", self.kv_block_size)
        _positive_int("kv_device_blocks", self.kv_device_blocks)
        _non_negative_int("kv_host_blocks", self.kv_host_blocks)
        _non_negative_int("min_run_steps", self.min_run_steps)
        _non_negative_int("within_class_min_gain", self.within_class_min_gain)
        _non_negative_int("within_class_min_run", self.within_class_min_run)
        if not isinstance(self.within_class_preemption, bool):
            raise ValueError(f"within_class_preemption must be true or false, got {self.within_class_preemption!r}")
        if self.token_budget < self.max_batch_size:
            raise ValueError(
                f"token_budget ({self.token_budget}) must be >= max_batch_size ({self.max_batch_size}) "
                "so every running request can decode each step")
        for name in ("swap_cost_per_token", "recompute_cost_per_token"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        if not isinstance(self.aging_bound, (int, float)) or isinstance(self.aging_bound, bool) \
                or not self.aging_bound >= 1.0:
            raise ValueError(f"aging_bound must be a number >= 1.0 (a multiple of the FCFS wait), got {self.aging_bound!r}")
        if self.aging_mode not in AGING_MODES:
            raise ValueError(f"aging_mode must be one of {AGING_MODES}, got {self.aging_mode!r}")
        targets = self.deadline_targets
        if not isinstance(targets, (tuple, list)) or len(targets) != NUM_LEVELS or any(
                not isinstance(t, (int, float)) or isinstance(t, bool) or not t > 0 for t in targets):
            raise ValueError(f"deadline_targets must be {NUM_LEVELS} positive numbers of seconds, got {targets!r}")
        if not isinstance(self.deadline_share, (int, float)) or not 0 < self.deadline_share <= 1:
            raise ValueError(f"deadline_share must be in (0, 1], got {self.deadline_share!r}")
        if not isinstance(self.reestimate_factor, (int, float)) or not self.reestimate_factor > 1.0:
            raise ValueError(f"reestimate_factor must be > 1.0, got {self.reestimate_factor!r}")
        if not isinstance(self.preemption_min_wait, (int, float)) or isinstance(self.preemption_min_wait, bool) \
                or not 0 <= self.preemption_min_wait < float("inf"):
            raise ValueError("preemption_min_wait must be a finite number >= 0 (output tokens of predicted work), "
                             f"got {self.preemption_min_wait!r}")
        if not isinstance(self.prefill_token_weight, (int, float)) or isinstance(self.prefill_token_weight, bool) \
                or not 0 <= self.prefill_token_weight < float("inf"):
            raise ValueError("prefill_token_weight must be a finite number >= 0 (a prompt token's machine time over "
                             f"an output token's), got {self.prefill_token_weight!r}")


def _positive_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _non_negative_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
