"""Urgency and answer-length prediction: the ESI decision points, a trained head, the red-flag rules.

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

Combination: decision points A, B and D (`decision_points.py`) and the red-flag rules each support a
level with evidence; the head (point C, resources, and a second opinion) gives a cost-sensitive level
(unsure -> more urgent). When the head chose level 2-4 but puts a material probability on levels 0-1
together (TRIAGE_CLASSIFIER_MATERIAL_P), the more likely of 0 and 1 is taken and the request is flagged
for a dispatcher to confirm. The final level is the most urgent any of them supports.
"""
import logging
import threading
import time
from dataclasses import dataclass, field

from scheduler.urgency import NAMES as LEVEL_NAMES

from . import decision_points, length, reading, rules

logger = logging.getLogger(__name__)
# The head's probability of levels 0-1 together above which a less urgent choice is raised and flagged.
# Chosen by leave-scenario-out cross-validation on the training data (docs/classifier.md).
MATERIAL_P = 0.2


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
    supports = decision_points.assess_batch([text], [found])[0][0]
    forced = decision_points.most_urgent(supports)
    default = int(_setting("TRIAGE_CLASSIFIER_FALLBACK_URGENCY", 2))
    urgency = rules.apply_rules(default, forced)
    evidence = " ".join(support.sentence() for support in supports)
    return Classification(
        urgency=urgency,
        predicted_output_tokens=length.default_tokens(urgency),
        model_urgency=None,
        rule_urgency=found.level,
        rule_reason=found.reason,
        classifier_name="rules-fallback",
        detail={"fallback": True, "fallback_reason": reason, "rules_fired": found.fired,
                "decision_points": [support.as_dict() for support in supports],
                "reasoning": (f"Model unavailable ({reason}). " + (f"{evidence} " if supports else
                              f"No red flag; conservative default level {default}. ")
                              + f"Final level {urgency} ({LEVEL_NAMES[urgency]}). Needs human review.")},
        needs_review=True,
    )



def classify(text):
    return classify_batch([text])[0]


def classify_batch(texts, findings=None):
    """Classify several requests with one encoder call. Falls back to rules if the model is unavailable."""
    texts = [reading.readable(text) for text in texts]
    if not texts:
        return []
    findings = list(findings) if findings is not None else [rules.red_flags(text) for text in texts]
    try:
        head, encoder_name = MODEL.get()
    except ModelUnavailable as exc:
        return [fallback(text, f"model not loaded: {exc}", found) for text, found in zip(texts, findings)]
    from . import encoder

    started = time.perf_counter()
    with encoder.reusing_embeddings():  # a one-clause call is its own clause
        embeddings = encoder.encode(texts, encoder_name)
        supports, clause_features = decision_points.assess_batch(texts, findings,
                                                                  encoder.encode_with(encoder_name), encoder_name)
    forced = [decision_points.most_urgent(found) for found in supports]
    probabilities, length_probabilities = head.predict(texts, embeddings, forced, clause_features)
    decided = head.decide(probabilities)
    tokens = head.expected_tokens(length_probabilities)
    elapsed_ms = (time.perf_counter() - started) * 1000 / len(texts)
    thresholds = review_thresholds()
    return [_combine(findings[i], supports[i], probabilities[i], int(decided[i]), float(tokens[i]), head,
                     elapsed_ms, thresholds) for i in range(len(texts))]


def review_thresholds():
    """(flag for review below this probability, raise to 0-1 at this probability of 0-1), from settings."""
    return (float(_setting("TRIAGE_CLASSIFIER_REVIEW_BELOW", 0.45)),
            float(_setting("TRIAGE_CLASSIFIER_MATERIAL_P", MATERIAL_P)))


def unsure_upward(probs, level, material):
    """Level 0 or 1 when the head puts a material probability on a life threat or high risk (levels 0-1
    together) but chose a less urgent level; else None. Under-triage of 0-1 is the error that does harm."""
    high_risk = float(probs[0] + probs[1])
    if level <= 1 or high_risk < material:
        return None
    return 0 if probs[0] > probs[1] else 1


def _combine(found, supports, probs, model_level, tokens, head, elapsed_ms, thresholds):
    review_below, material = thresholds
    forced = decision_points.most_urgent(supports)
    ranked = sorted(range(len(probs)), key=lambda k: -probs[k])
    top, second = ranked[0], ranked[1]
    notes = [support.sentence() for support in sorted(supports, key=lambda s: (s.level, s.point))]
    notes.append(f"Decision point C (resources needed), learned model: most likely level {top} "
                 f"({probs[top]:.0%}), next {second} ({probs[second]:.0%}).")
    if model_level < top:
        notes.append(f"Unsure: chose the more urgent level {model_level} (missing a life threat or high risk "
                     f"costs {head.under_cost:g}x over-triage).")
    elif model_level > top:
        notes.append(f"Unsure between levels {top} and {model_level}: chose the less urgent, because calling a "
                     "non-urgent request urgent takes a place that an emergency needs.")
    upward = unsure_upward(probs, model_level, material)
    chosen = model_level if upward is None else upward
    if upward is not None and (forced is None or forced > upward):
        notes.append(f"The chance of level 0-1 is material ({probs[0] + probs[1]:.0%}): took level {upward}; "
                     "a dispatcher should confirm.")
    urgency = rules.apply_rules(chosen, forced)
    if forced is not None and forced < chosen:
        notes.append(f"The decision points raised urgency from {chosen} to {forced}.")
    notes.append(f"Final level {urgency} ({LEVEL_NAMES[urgency]}).")
    confident = forced is not None or (upward is None and probs[chosen] >= review_below)
    return Classification(
        urgency=urgency,
        predicted_output_tokens=int(round(tokens)),
        model_urgency=model_level,
        rule_urgency=found.level,
        rule_reason=found.reason,
        classifier_name=f"{head.encoder_name}+head-{head.version}",
        detail={"probabilities": [round(float(p), 4) for p in probs], "top_level": top,
                "model_level": model_level, "rules_fired": found.fired, "reasoning": " ".join(notes),
                "decision_points": [support.as_dict() for support in supports],
                "length_bucket": length.bucket_of(tokens), "latency_ms": round(elapsed_ms, 2),
                "head_version": head.version},
        needs_review=not confident,
    )
