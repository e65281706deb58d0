"""Sequence: a request's token ids and sampling state in the engine; its scheduling state is on the
scheduler's SchedRequest."""

from __future__ import annotations

from scheduler import SchedRequest

from .sampling import GREEDY, SamplingParams


class Sequence:
    __slots__ = ("request", "token_ids", "max_new_tokens", "generated", "sampling", "generator")

    def __init__(self, request: SchedRequest, prompt_token_ids: list[int], max_new_tokens: int,
                 sampling: SamplingParams = GREEDY):
        self.request = request
        self.token_ids = list(prompt_token_ids)  # prompt, then every sampled token
        self.max_new_tokens = max_new_tokens
        self.generated = 0
        self.sampling = sampling
        self.generator = None  # its own random generator (sampler.py), made at its first sampled token

    def append_token(self, token_id: int, eos_token_ids) -> str | None:
        """Record a sampled token; returns why the sequence is finished ("eos" | "length") or None."""
        self.token_ids.append(token_id)
        self.generated += 1
        if token_id in eos_token_ids:
            return "eos"
        if self.generated >= self.max_new_tokens:
            return "length"
        return None
