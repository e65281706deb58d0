"""Request, plan and preemption-action types shared by the scheduler, the engine and the simulator."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .config import NUM_URGENCY_CLASSES

STATES = ("waiting", "running", "preempted", "finished")
KV_LOCATIONS = ("none", "device", "host")


class PreemptAction(enum.Enum):
    """What happens to a preempted request's KV cache."""

    KEEP = "keep"            # KV stays on device; the request is paused
    SWAP = "swap"            # copy KV blocks to host, free device blocks
    RECOMPUTE = "recompute"  # free KV; later re-prefill prompt + generated tokens


class SchedRequest:
    """One inference request. Fields below `arrival_time`/`max_output_tokens` are maintained by the Scheduler."""

    __slots__ = (
        "request_id", "urgency", "prompt_tokens", "predicted_output_tokens", "arrival_time",
        "max_output_tokens", "generated_tokens", "computed_tokens", "state", "kv_location",
        "first_token_time", "finish_time", "preemptions", "preempted_intervals", "cancelled",
        # internal bookkeeping (underscore = scheduler-private)
        "_seq", "_est_output", "_prefill_target", "_device_blocks", "_host_blocks",
        "_aged_levels", "_aging_interval", "_aging_base", "_runs_since_resume", "_preempted_at",
        "_entry",
    )

    def __init__(self, request_id, urgency: int, prompt_tokens: int, predicted_output_tokens: int,
                 arrival_time: float, max_output_tokens: int | None = None) -> None:
        if not isinstance(urgency, int) or isinstance(urgency, bool) or not 0 <= urgency < NUM_URGENCY_CLASSES:
            raise ValueError(f"urgency must be an integer 0..{NUM_URGENCY_CLASSES - 1}, got {urgency!r}")
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
        self.computed_tokens = 0
        self.state = "waiting"
        self.kv_location = "none"
        self.first_token_time: float | None = None
        self.finish_time: float | None = None
        self.preemptions = 0
        self.preempted_intervals: list[tuple[float, float]] = []
        self.cancelled = False
        self._seq = 0
        self._est_output = predicted_output_tokens
        self._prefill_target = prompt_tokens
        self._device_blocks = 0
        self._host_blocks = 0
        self._aged_levels = 0
        self._aging_interval = 0.0
        self._aging_base = 0
        self._runs_since_resume = 0
        self._preempted_at: float | None = None
        self._entry = None

    @property
    def effective_urgency(self) -> int:
        """Urgency after aging; aging never lifts anything above urgency 0."""
        return max(0, self.urgency - self._aged_levels)

    @property
    def in_prefill(self) -> bool:
        return self.computed_tokens < self._prefill_target

    @property
    def predicted_remaining_work(self) -> int:
        """Remaining prefill tokens plus predicted (re-estimated) remaining output tokens."""
        prefill = self._prefill_target - self.computed_tokens if self.computed_tokens < self._prefill_target else 0
        return prefill + max(1, self._est_output - self.generated_tokens)

    def __repr__(self) -> str:
        return (f"SchedRequest({self.request_id!r}, u={self.urgency}, p={self.prompt_tokens}, "
                f"pred={self.predicted_output_tokens}, gen={self.generated_tokens}, state={self.state})")


@dataclass
class StepPlan:
    """One step's decisions. The engine applies preempt, then swap_in, then runs prefill + decode as one batch."""

    preempt: list = field(default_factory=list)   # list[(SchedRequest, PreemptAction)]
    swap_in: list = field(default_factory=list)   # list[SchedRequest]
    prefill: list = field(default_factory=list)   # list[(SchedRequest, num_tokens)]
    decode: list = field(default_factory=list)    # list[SchedRequest]

    @property
    def is_empty(self) -> bool:
        return not (self.preempt or self.swap_in or self.prefill or self.decode)

    @property
    def batch_size(self) -> int:
        return len(self.prefill) + len(self.decode)

    @property
    def num_tokens(self) -> int:
        return sum(n for _, n in self.prefill) + len(self.decode)
