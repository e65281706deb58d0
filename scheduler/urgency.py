"""The urgency scale, in one place: how many levels, what each is called and how it is drawn.

ESI-style: 0 is an immediate threat to life, 4 is non-urgent; a lower number is always more urgent.
The scheduler, the Django models, the classifier, the metrics, the templates and the scripts all read
this module (the pages get the colours as CSS variables from `triage_site.context_processors`)."""
from __future__ import annotations

LEVELS = (0, 1, 2, 3, 4)
NUM_LEVELS = len(LEVELS)
MOST_URGENT = LEVELS[0]
LEAST_URGENT = LEVELS[-1]

NAMES = {
    0: "immediate threat to life",
    1: "high risk or severe distress",
    2: "urgent",
    3: "less urgent",
    4: "non-urgent",
}

# Background and text colour of each level's badge; the text colour keeps WCAG AA contrast on it.
COLOURS = {0: "#c62828", 1: "#b34700", 2: "#f9a825", 3: "#2e7d32", 4: "#1565c0"}
TEXT_COLOURS = {0: "#fff", 1: "#fff", 2: "#1d1d1f", 3: "#fff", 4: "#fff"}


def is_level(value) -> bool:
    """True for an int (not a bool) on the scale."""
    return isinstance(value, int) and not isinstance(value, bool) and MOST_URGENT <= value <= LEAST_URGENT


def label(level: int) -> str:
    """'0 – immediate threat to life': how forms, the board and the admin name a level."""
    return f"{level} \u2013 {NAMES[level]}"


def per_level(value=0) -> list:
    """A fresh list with one `value` per level, indexed by level."""
    return [value] * NUM_LEVELS
