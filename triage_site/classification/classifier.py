"""Urgency and answer-length prediction.

Placeholder until the trained classifier lands: keyword rules only.
"""
from dataclasses import dataclass, field

_LEVEL_KEYWORDS = (
    (0, ("not breathing", "unresponsive", "cardiac arrest", "no pulse", "choking")),
    (1, ("chest pain", "stroke", "severe bleeding", "overdose", "suicid")),
    (2, ("broken", "fracture", "high fever", "vomiting blood")),
    (3, ("sprain", "cut", "rash", "fever")),
)


@dataclass
class Classification:
    urgency: int
    predicted_output_tokens: int
    model_urgency: int | None = None
    rule_urgency: int | None = None
    rule_reason: str = ""
    classifier_name: str = "keyword-placeholder"
    detail: dict = field(default_factory=dict)
    needs_review: bool = False


def classify(text):
    lowered = text.lower()
    for level, keywords in _LEVEL_KEYWORDS:
        hits = [word for word in keywords if word in lowered]
        if hits:
            return Classification(urgency=level, predicted_output_tokens=120 + 20 * level,
                                  rule_urgency=level, rule_reason=f"mentions {', '.join(hits)}")
    return Classification(urgency=4, predicted_output_tokens=200)
