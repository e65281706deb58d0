"""Urgency and answer-length prediction: trained head on sentence embeddings + red-flag rules.

    classify(text) -> Classification
    classify_batch(texts, findings=None) -> list[Classification]   (one encoder batch)
    fallback(text, reason, found=None) -> Classification           (rules only, flagged for review)

A library: text in, classification out; it knows nothing of requests or the database. `findings` are
the red-flag rules' results (`rules.red_flags`) when the caller already has them (intake runs the
rules once per request, as it arrives); without them they are found here, once per text.

The model (encoder + head) is loaded lazily, once per process. If it cannot load, every request
still gets an urgency: the rules' level if a red flag fired, else TRIAGE_CLASSIFIER_FALLBACK_URGENCY
(default 2), with needs_review=True and the reason in `detail`. A failed load is retried after
TRIAGE_CLASSIFIER_RELOAD_S seconds (default 60).

Combination: the head's probabilities give a cost-sensitive level (unsure -> more urgent);
the rules can only raise urgency: urgency = min(model level, rule level).
"""
import logging
import threading
import time
from dataclasses import dataclass, field

from scheduler.urgency import NAMES as LEVEL_NAMES

from . import length, rules

logger = logging.getLogger(__name__)


@dataclass
class Classification:
    urgency: int
    predicted_output_tokens: int
    model_urgency: int | None = None
    rule_urgency: int | None = None
    rule_reason: str = ""
    classifier_name: str = "rules-fallback"
    detail: dict = field(default_factory=dict)
    needs_review: bool = False


def _setting(name, default):
    try:
        from django.conf import settings
        return getattr(settings, name, default)
    except Exception:  # noqa: BLE001 - settings not configured
        return default


class _Model:
    """The loaded encoder + head, or the error that stopped them loading."""

    def __init__(self):
        self.lock = threading.Lock()
        self.head = None
        self.encoder_name = None
        self.error = None
        self.failed_at = None

    def get(self):
        """(head, encoder_name) or raise ModelUnavailable; reload attempts are rate-limited."""
        with self.lock:
            if self.head is not None:
                return self.head, self.encoder_name
            retry_after = float(_setting("TRIAGE_CLASSIFIER_RELOAD_S", 60))
            if self.failed_at is not None and time.monotonic() - self.failed_at < retry_after:
                raise ModelUnavailable(self.error)
            try:
                from . import encoder, head

                name = encoder.configured_name()
                loaded = head.load(_setting("TRIAGE_CLASSIFIER_HEAD", head.ARTIFACT_PATH), encoder_name=name)
                encoder.get_encoder(name)
            except Exception as exc:  # noqa: BLE001 - any failure means: run on rules
                self.error, self.failed_at = str(exc), time.monotonic()
                logger.error("urgency model unavailable, using rules only: %s", exc)
                raise ModelUnavailable(self.error) from exc
            self.head, self.encoder_name, self.error, self.failed_at = loaded, name, None, None
            return self.head, self.encoder_name

    def reset(self):
        with self.lock:
            self.head = self.encoder_name = self.error = self.failed_at = None


class ModelUnavailable(RuntimeError):
    pass


MODEL = _Model()


def fallback(text, reason, found=None):
    """Rules-only classification, always flagged for human review."""
    if found is None:
        found = rules.red_flags(text)
    default = int(_setting("TRIAGE_CLASSIFIER_FALLBACK_URGENCY", 2))
    urgency = rules.apply_rules(default, found.level)
    return Classification(
        urgency=urgency,
        predicted_output_tokens=length.default_tokens(urgency),
        model_urgency=None,
        rule_urgency=found.level,
        rule_reason=found.reason,
        classifier_name="rules-fallback",
        detail={"fallback": True, "fallback_reason": reason, "rules_fired": found.fired,
                "reasoning": (f"Model unavailable ({reason}). " + (f"Red flags: {found.reason}. "
                              if found.reasons else f"No red flag; conservative default level {default}. ")
                              + f"Final level {urgency} ({LEVEL_NAMES[urgency]}). Needs human review.")},
        needs_review=True,
    )


def classify(text):
    return classify_batch([text])[0]


def classify_batch(texts, findings=None):
    """Classify several requests with one encoder call. Falls back to rules if the model is unavailable."""
    texts = list(texts)
    if not texts:
        return []
    findings = list(findings) if findings is not None else [rules.red_flags(text) for text in texts]
    try:
        head, encoder_name = MODEL.get()
    except ModelUnavailable as exc:
        return [fallback(text, f"model not loaded: {exc}", found) for text, found in zip(texts, findings)]
    from . import encoder

    started = time.perf_counter()
    embeddings = encoder.encode(texts, encoder_name)
    probabilities, length_probabilities = head.predict(texts, embeddings, findings)
    decided = head.decide(probabilities)
    tokens = head.expected_tokens(length_probabilities)
    elapsed_ms = (time.perf_counter() - started) * 1000 / len(texts)
    review_below = float(_setting("TRIAGE_CLASSIFIER_REVIEW_BELOW", 0.45))
    return [_combine(findings[i], probabilities[i], int(decided[i]), float(tokens[i]), head, elapsed_ms,
                     review_below) for i in range(len(texts))]


def _combine(found, probs, model_level, tokens, head, elapsed_ms, review_below):
    urgency = rules.apply_rules(model_level, found.level)
    ranked = sorted(range(len(probs)), key=lambda k: -probs[k])
    top, second = ranked[0], ranked[1]
    notes = [f"Model: most likely level {top} ({probs[top]:.0%}), next {second} ({probs[second]:.0%})."]
    if model_level != top:
        notes.append(f"Unsure: chose the more urgent level {model_level} (under-triage costs "
                     f"{head.under_cost:g}x over-triage).")
    if found.level is not None:
        notes.append(f"Red flags: {found.reason} -> at least level {found.level}.")
        if found.level < model_level:
            notes.append(f"Rules raised urgency from {model_level} to {found.level}.")
    notes.append(f"Final level {urgency} ({LEVEL_NAMES[urgency]}).")
    confident = probs[model_level] >= review_below or found.level is not None
    return Classification(
        urgency=urgency,
        predicted_output_tokens=int(round(tokens)),
        model_urgency=model_level,
        rule_urgency=found.level,
        rule_reason=found.reason,
        classifier_name=f"{head.encoder_name}+head-{head.version}",
        detail={"probabilities": [round(float(p), 4) for p in probs], "top_level": top,
                "model_level": model_level, "rules_fired": found.fired, "reasoning": " ".join(notes),
                "length_bucket": length.bucket_of(tokens), "latency_ms": round(elapsed_ms, 2),
                "head_version": head.version},
        needs_review=not confident,
    )
