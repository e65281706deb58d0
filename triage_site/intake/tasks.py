"""The Celery task that classifies stored requests and queues them for generation, and how it is sent.

`classify_request(request_id)` is what intake enqueues (`enqueue_classification`). It fetches the request
(through `selectors`), calls the classifier library and records the verdict (through `services`). It is:

* idempotent: a request no longer `received`/`classifying` is skipped; `record_classification`
  only writes a request still waiting, so a re-run never queues it twice;
* acknowledged late (acks_late, reject on worker lost): a worker dying mid-task leaves the
  message to be redelivered;
* retried, by one mechanism, with exponential backoff (2, 4, 8 ... s, at most 60 s, with jitter) on
  transient errors anywhere in it (broker, database, encoder: connections and timeouts). On the last
  attempt a classifier that still fails gives way to the rules-only fallback, flagged for review, so
  nothing is lost; a database that still fails leaves the requests waiting for `resend_unclassified`;
* batching: after a short window (TRIAGE_CLASSIFIER_BATCH_WINDOW_S, default 0.02 s) the task also
  claims up to TRIAGE_CLASSIFIER_BATCH_MAX - 1 other requests still `received` (red flags first), each with an
  atomic `UPDATE ... WHERE status='received'`, so two workers never claim the same one, and
  classifies them all in one encoder batch. A claimed request's own task later finds it queued
  and skips it. If the batch leader dies, claimed requests stay `classifying`; their own tasks
  (and `resend_unclassified`) still classify them.
"""
import logging
import random
import time

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from triage_site.classification import classifier, encoder, reading, rules
from triage_site.guidance import selection

from . import selectors, services

logger = logging.getLogger(__name__)
TRANSIENT_ERRORS = (ConnectionError, TimeoutError, OperationalError, InterfaceError)
MAX_RETRIES = 5


def backoff_seconds(retries, base=2.0, cap=60.0):
    """Exponential backoff with full jitter on the upper half: retry n waits ~ base * 2**n, at most cap."""
    delay = min(cap, base * (2 ** retries))
    return delay / 2 + random.uniform(0, delay / 2)


def enqueue_classification(request_id):
    """Send the classification task; a broker outage leaves the request stored as `received`.

    Stored requests that were never classified are sent again by `resend_unclassified`.
    """
    try:
        classify_request.delay(request_id)
    except Exception:  # broker down or unreachable: the row is safe, retry later
        logger.exception("could not enqueue classification of request %s; it stays received", request_id)
        return False
    return True


def resend_unclassified(older_than_seconds=30):
    """Re-enqueue requests stuck before classification (broker outage, lost task)."""
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    return sum(enqueue_classification(pk) for pk in selectors.unclassified_before(cutoff))


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES)
def classify_request(self, request_id, peer_ids=None):
    """Classify request `request_id` (and any requests waiting with it) and queue them."""
    last_attempt = self.request.retries >= self.max_retries
    try:
        if not selectors.is_awaiting_classification(request_id):
            return "skipped"
        services.claim_for_classification(request_id)  # no-op when a previous attempt already claimed it
        if peer_ids is None:
            peer_ids = claim_batch_peers(request_id)
        return classify_and_record([request_id, *peer_ids], leader_id=request_id, last_attempt=last_attempt)
    except TRANSIENT_ERRORS as exc:
        if last_attempt:
            raise
        logger.warning("transient error classifying %s (attempt %s): %s", request_id, self.request.retries + 1, exc)
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries),
                         args=[request_id], kwargs={"peer_ids": peer_ids})


def claim_batch_peers(leader_id):
    """Wait a moment for requests arriving together, then claim them to classify in one encoder batch."""
    window = float(getattr(settings, "TRIAGE_CLASSIFIER_BATCH_WINDOW_S", 0.02))
    if window > 0:
        time.sleep(window)
    batch_max = int(getattr(settings, "TRIAGE_CLASSIFIER_BATCH_MAX", 16))
    return services.claim_peers(leader_id, batch_max - 1)


def classify_and_record(request_ids, *, leader_id, last_attempt=False):
    """Classify those of `request_ids` still waiting, in one batch, and queue them. Returns what happened."""
    rows = selectors.awaiting_classification(request_ids)
    if not rows:
        return "skipped"
    texts = [reading.readable(text) for _, text, _ in rows]  # as seen: no invisible or look-alike letters
    # Requests that did not come through intake (the admin, scripts) have no stored findings yet.
    findings = [rules.RuleResult.from_dict(stored) if stored else rules.red_flags(text)
                for text, (_, _, stored) in zip(texts, rows)]
    with encoder.reusing_embeddings():
        results = _classify(texts, findings, last_attempt)
        cards = selection.select_for_classifications(texts, results)
    recorded = 0
    for (pk, _, _), result, (shown, triggers) in zip(rows, results, cards):
        detail = dict(result.detail, batch={"leader": leader_id, "size": len(rows)},
                      card_triggers={card_id: round(strength, 3) for card_id, strength in triggers.items()})
        recorded += services.record_classification(
            pk, urgency=result.urgency, predicted_output_tokens=result.predicted_output_tokens,
            model_urgency=result.model_urgency, rule_urgency=result.rule_urgency, rule_reason=result.rule_reason,
            classifier_name=result.classifier_name, classifier_detail=detail, needs_review=result.needs_review,
            cards=[card.reference() for card in shown], card_texts=selection.texts_kept([], shown),
        )
    return "classified" if recorded else "skipped"


def load_models():
    """Classify one made-up call and choose its cards, storing nothing, so the encoder, ConText and the card
    phrases are loaded before the first caller's request instead of during it (seconds on a CPU)."""
    text = "my father collapsed and is not breathing"
    with encoder.reusing_embeddings():
        selection.select_for_classifications([text], classifier.classify_batch([text], [rules.red_flags(text)]))


def _classify(texts, findings, last_attempt):
    """The classifier's verdicts; the rules-only fallback when it is broken, or still failing at the last try."""
    try:
        return classifier.classify_batch(texts, findings)
    except TRANSIENT_ERRORS as exc:
        if not last_attempt:
            raise
        reason = f"classifier failed after {MAX_RETRIES} retries: {exc}"
    except Exception as exc:  # noqa: BLE001 - a classifier bug must not lose requests
        logger.exception("classifier error for a batch of %s requests; using rules fallback", len(texts))
        reason = f"classifier error: {exc!r}"
    return [classifier.fallback(text, reason, found) for text, found in zip(texts, findings)]
