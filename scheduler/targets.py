"""Clinical time targets per urgency class, read by the board, the simulator and the benchmarks alike.

A target is a number of seconds per level (most urgent first). Two kinds exist:
- the first guidance token: from the request's arrival to the first word of its answer;
- acknowledgement of an alert: from the alert to a dispatcher's acknowledgement. Only the levels with a
  target raise an alert (by default 0 and 1, as triage scales escalate only those to a person at once).

The defaults follow the spirit of triage scales' time-to-clinician targets (immediate, within minutes,
within the hour, ...), scaled to guidance from a machine; a service sets its own through settings.
"""
from __future__ import annotations

import os

from .urgency import LEVELS, NUM_LEVELS

FIRST_TOKEN_TARGET_SECONDS = (2.0, 10.0, 60.0, 300.0, 900.0)
ACKNOWLEDGE_TARGET_SECONDS = (30.0, 60.0, None, None, None)
NEAR_SHARE = 0.75  # past this share of its target a wait is "near" it

WITHIN, NEAR, OVER = "within", "near", "over"


def parse(text: str, *, name: str, allow_none: bool = False) -> tuple:
    """'2,10,60,300,900' -> (2.0, 10.0, 60.0, 300.0, 900.0); '-' marks a level without a target
    where `allow_none`. Anything else is refused with a message naming `name`."""
    parts = [part.strip() for part in str(text).split(",")]
    if len(parts) != NUM_LEVELS:
        raise ValueError(f"{name} needs {NUM_LEVELS} comma-separated values, one per urgency level "
                         f"{LEVELS[0]}..{LEVELS[-1]}, got {text!r}")
    values = []
    for level, part in zip(LEVELS, parts):
        if part in ("-", "") and allow_none:
            values.append(None)
            continue
        try:
            seconds = float(part)
        except ValueError:
            raise ValueError(f"{name}: level {level}'s target must be a number of seconds"
                             f"{' or -' if allow_none else ''}, got {part!r}") from None
        if not seconds > 0:
            raise ValueError(f"{name}: level {level}'s target must be above 0 seconds, got {part!r}")
        values.append(seconds)
    return tuple(values)


FIRST_TOKEN_SETTING = "TRIAGE_FIRST_TOKEN_TARGETS_S"
ACKNOWLEDGE_SETTING = "TRIAGE_ACKNOWLEDGE_TARGETS_S"


def from_environment(name: str, default: tuple, *, allow_none: bool = False) -> tuple:
    """A service's own targets from its environment (the same variable Django's settings read), else `default`."""
    value = os.environ.get(name, "").strip()
    return parse(value, name=name, allow_none=allow_none) if value else default


def first_token_targets() -> tuple:
    return from_environment(FIRST_TOKEN_SETTING, FIRST_TOKEN_TARGET_SECONDS)


def state(elapsed_seconds: float, target_seconds: float | None) -> str | None:
    """Where a wait stands against its target: within, near (past NEAR_SHARE of it) or over."""
    if target_seconds is None or elapsed_seconds is None:
        return None
    if elapsed_seconds > target_seconds:
        return OVER
    return NEAR if elapsed_seconds > NEAR_SHARE * target_seconds else WITHIN


def attainment(samples, targets) -> list:
    """`samples` are (level, seconds) pairs; one {"within", "total", "share"} per level, share None when
    a level had no sample. A wait equal to its target is within it."""
    within, total = [0] * NUM_LEVELS, [0] * NUM_LEVELS
    for level, seconds in samples:
        total[level] += 1
        if targets[level] is not None and seconds <= targets[level]:
            within[level] += 1
    return [{"within": w, "total": t, "share": (w / t if t else None)} for w, t in zip(within, total)]
