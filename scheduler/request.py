"""SchedRequest: one request's state, kept on the request itself (read by the scheduler, engine and simulator)."""
from __future__ import annotations

import enum

from .urgency import LEAST_URGENT, MOST_URGENT, is_level


class RequestState(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    PREEMPTED = "preempted"
    FINISHED = "finished"


class KVLocation(enum.Enum):
    """Where a request's KV cache is."""

    NONE = "none"      # not computed yet, or dropped (RECOMPUTE, finished, cancelled)
    DEVICE = "device"
    HOST = "host"      # swapped out


class SchedRequest:
    """One inference request. Fields after `max_output_tokens` are maintained by the Scheduler."""

    __slots__ = (
        "request_id", "urgency", "prompt_tokens", "predicted_output_tokens", "arrival_time",
        "max_output_tokens", "generated_tokens", "computed_tokens", "state", "kv_location",
        "first_token_time", "finish_time", "preemptions", "preempted_intervals", "cancelled",
        "arrival_seq", "estimated_output_tokens", "prefill_target", "device_blocks", "host_blocks",
        "steps_since_resume", "aged_levels", "admissions_at_arrival", "admissions_per_level",
        "prefill_token_weight", "_preempted_at",
    )

    def __init__(self, request_id, urgency: int, prompt_tokens: int, predicted_output_tokens: int,
                 arrival_time: float, max_output_tokens: int | None = None) -> None:
        if not is_level(urgency):
            raise ValueError(f"urgency must be an integer {MOST_URGENT}..{LEAST_URGENT}, got {urgency!r}")
        if not isinstance(prompt_tokens, int) or prompt_tokens < 1:
            raise ValueError(f"prompt_tokens must be a positive integer, got {prompt_tokens!r}")
        if not isinstance(predicted_output_tokens, int) or predicted_output_tokens < 1:
            raise ValueError(f"predicted_output_tokens must be a positive integer, got {predicted_output_tokens!r}")
        if max_output_tokens is not None and (not isinstance(max_output_tokens, int) or max_output_tokens < 1):
            raise ValueError(f"max_output_tokens must be None or a positive integer, got {max_output_tokens!r}")
        if not isinstance(arrival_time, (int, float)) or arrival_time != arrival_time:
            raise ValueError(f"arrival_time must be a number, got {arrival_time!r}")
        self.request_id = request_id
        self.urgency = urgency
        self.prompt_tokens = prompt_tokens
        self.predicted_output_tokens = predicted_output_tokens
        self.arrival_time = float(arrival_time)
        self.max_output_tokens = max_output_tokens
        self.generated_tokens = 0
        self.computed_tokens = 0  # prompt tokens prefilled so far + generated tokens
        self.state = RequestState.WAITING
        self.kv_location = KVLocation.NONE
        self.first_token_time: float | None = None
        self.finish_time: float | None = None
        self.preemptions = 0
        self.preempted_intervals: list[tuple[float, float]] = []  # (preempted at, resumed at), for Gantt charts
        self.cancelled = False
        self.arrival_seq = 0                     # order of add(): the unique tie-breaker ending every priority key
        self.estimated_output_tokens = predicted_output_tokens  # raised when generation runs past it
        self.prefill_target = prompt_tokens      # computed_tokens the (re)prefill must reach to yield a token
        self.device_blocks = 0                   # KV blocks reserved on the device (see blocks.py)
        self.host_blocks = 0                     # KV blocks held on the host while swapped out
        self.steps_since_resume = 0              # anti-thrashing: urgency preemption waits for min_run_steps
        self.aged_levels = 0                     # urgency levels gained by aging (see aging.py)
        self.admissions_at_arrival = 0
        self.admissions_per_level = 0.0
        self.prefill_token_weight = 1.0          # set by Scheduler.add from its config
        self._preempted_at: float | None = None

    @property
    def effective_urgency(self) -> int:
        """Urgency after aging; aging never lifts anything above the most urgent level."""
        return max(MOST_URGENT, self.urgency - self.aged_levels)

    @property
    def predicted_remaining_work(self) -> float:
        """Predicted remaining machine time in output tokens: each prompt token still to (re)prefill counts
        `prefill_token_weight` of one. Counting both alike made a long prompt look as slow as a long answer, when a
        prompt token holds a GPU for ~1/100 of a decode step, which a batch of 16 shares."""
        prefill = self.prefill_target - self.computed_tokens if self.computed_tokens < self.prefill_target else 0
        return self.prefill_token_weight * prefill + max(1, self.estimated_output_tokens - self.generated_tokens)

    def __repr__(self) -> str:
        return (f"SchedRequest({self.request_id!r}, u={self.urgency}, p={self.prompt_tokens}, "
                f"pred={self.predicted_output_tokens}, gen={self.generated_tokens}, state={self.state.value})")
