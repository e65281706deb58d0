"""StepPlan: what one step does, the scheduler's whole answer to the engine (or the simulator)."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field


class PreemptAction(enum.Enum):
    """What happens to a preempted request's KV cache."""

    KEEP = "keep"            # KV stays on device; the request is paused
    SWAP = "swap"            # copy KV blocks to host, free device blocks
    RECOMPUTE = "recompute"  # free KV; later re-prefill prompt + generated tokens


@dataclass
class StepPlan:
    """One step's decisions. The engine applies preempt, then swap_in, then runs prefill + decode as one batch."""

    preempt: list = field(default_factory=list)   # list[(SchedRequest, PreemptAction)]
    swap_in: list = field(default_factory=list)   # list[SchedRequest]
    prefill: list = field(default_factory=list)   # list[(SchedRequest, num_tokens)]
    decode: list = field(default_factory=list)    # list[SchedRequest]

    @property
    def batch_size(self) -> int:
        return len(self.prefill) + len(self.decode)

    @property
    def num_tokens(self) -> int:
        return sum(n for _, n in self.prefill) + len(self.decode)
