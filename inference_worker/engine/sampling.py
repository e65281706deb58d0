"""SamplingParams: how one request picks its tokens; the sequence carries them (sampler.py applies them).

The logits processors are transformers' own, in ``generate``'s order (repetition penalty, no-repeat
n-grams, then temperature and top-p), so greedy output with a penalty equals
``model.generate(do_sample=False, ...)`` under the same settings. Requests that need none of them
take the runner's argmax fast path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from transformers import (LogitsProcessorList, NoRepeatNGramLogitsProcessor, RepetitionPenaltyLogitsProcessor,
                          TemperatureLogitsWarper, TopPLogitsWarper)


@dataclass(frozen=True)
class SamplingParams:
    """How one request picks its tokens. temperature 0 is greedy (top_p and seed then do nothing);
    stop strings end the answer where they begin (the service applies them: the engine has no text)."""

    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self):
        if isinstance(self.stop, str):  # a lone string is one stop string, not one per character
            object.__setattr__(self, "stop", (self.stop,))
        else:
            object.__setattr__(self, "stop", tuple(self.stop))
        for problem in self._problems():
            raise ValueError(problem)

    def _problems(self):
        if not _is_number(self.temperature) or not 0 <= self.temperature <= 100:
            yield f"temperature must be a number from 0 (greedy) to 100, got {self.temperature!r}"
        if not _is_number(self.top_p) or not 0 < self.top_p <= 1:
            yield f"top_p must be in (0, 1], got {self.top_p!r}"
        if not _is_number(self.repetition_penalty) or not 0 < self.repetition_penalty <= 10:
            yield f"repetition_penalty must be in (0, 10] (1 = none), got {self.repetition_penalty!r}"
        if not _is_int(self.no_repeat_ngram_size) or self.no_repeat_ngram_size < 0:
            yield f"no_repeat_ngram_size must be an integer >= 0 (0 = off), got {self.no_repeat_ngram_size!r}"
        if not all(isinstance(s, str) and s for s in self.stop):
            yield f"stop must be non-empty strings, got {self.stop!r}"
        if self.seed is not None and not _is_int(self.seed):
            yield f"seed must be an integer or None, got {self.seed!r}"

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def needs_logits(self) -> bool:
        """False when a plain argmax gives this request's token: the runner's fast path."""
        return not self.greedy or self.repetition_penalty != 1.0 or self.no_repeat_ngram_size > 0

    def processors(self) -> LogitsProcessorList:
        """transformers' processors for these settings, in ``generate``'s order (stateless: shared by every
        request with these settings)."""
        return _processors(self)


@lru_cache(maxsize=64)
def _processors(params: SamplingParams) -> LogitsProcessorList:
    processors = LogitsProcessorList()
    if params.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(float(params.repetition_penalty)))
    if params.no_repeat_ngram_size > 0:
        processors.append(NoRepeatNGramLogitsProcessor(params.no_repeat_ngram_size))
    if not params.greedy:
        if params.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(float(params.temperature)))
        if params.top_p < 1.0:
            processors.append(TopPLogitsWarper(float(params.top_p)))
    return processors


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


GREEDY = SamplingParams()
