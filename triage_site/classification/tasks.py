"""The Celery task that classifies stored requests and queues them for generation.

`classify_request(request_id)` is what intake enqueues (`.delay(request_id)`). It is:

* idempotent: a request no longer `received`/`classifying` is skipped; `record_classification`
  only writes a request still waiting, so a re-run never queues it twice;
* acknowledged late (acks_late, reject on worker lost): a worker dying mid-task leaves the
  message to be redelivered;
* retried with exponential backoff (2, 4, 8 ... s, at most 60 s, with jitter) on transient errors
  (broker / database connection, timeouts); when retries run out the requests get the rules-only
  fallback classification, flagged for review, so nothing is lost;
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
from django.db.models import F

from triage_site.intake import services
from triage_site.intake.models import MedicalRequest, Status

from . import classifier

logger = logging.getLogger(__name__)
WAITING = (Status.RECEIVED, Status.CLASSIFYING)
TRANSIENT_ERRORS = (ConnectionError, TimeoutError, OperationalError, InterfaceError)
MAX_RETRIES = 5


def backoff_seconds(retries, base=2.0, cap=60.0):
    """Exponential backoff with full jitter on the upper half: retry n waits ~ base * 2**n, at most cap."""
    delay = min(cap, base * (2 ** retries))
    return delay / 2 + random.uniform(0, delay / 2)


def claim(request_id):
    """Atomically move a request from received to classifying; True if this caller claimed it."""
    return services.mark_classifying(request_id)


def claim_peers(exclude_id, limit):
    """Claim up to `limit` other requests waiting in `received`: those the safety rules flagged at
    intake first (most urgent first), then the oldest. Under a backlog a cardiac arrest is classified
    in the next batch, not after everything that arrived before it."""
    if limit <= 0:
        return []
    candidates = (MedicalRequest.objects.filter(status=Status.RECEIVED).exclude(pk=exclude_id)
                  .order_by(F("rule_urgency").asc(nulls_last=True), "created_at", "id")
                  .values_list("pk", flat=True)[: limit * 2])
    claimed = []
    for pk in candidates:
        if len(claimed) >= limit:
            break
        if claim(pk):
            claimed.append(pk)
    return claimed


# Errors raised outside the classifier (database / broker while recording) retry automatically.
@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES,
             autoretry_for=(OperationalError, InterfaceError, ConnectionError, TimeoutError),
             retry_backoff=2, retry_backoff_max=60, retry_jitter=True)
def classify_request(self, request_id, peer_ids=None):
    """Classify request `request_id` (and any requests waiting with it) and queue them."""
    request = MedicalRequest.objects.filter(pk=request_id).only("status").first()
    if request is None or request.status not in WAITING:
        return "skipped"
    claim(request_id)  # no-op when a previous attempt already moved it to classifying
    if peer_ids is None:
        window = float(getattr(settings, "TRIAGE_CLASSIFIER_BATCH_WINDOW_S", 0.02))
        if window > 0:
            time.sleep(window)
        batch_max = int(getattr(settings, "TRIAGE_CLASSIFIER_BATCH_MAX", 16))
        peer_ids = claim_peers(request_id, batch_max - 1)
    rows = list(MedicalRequest.objects.filter(pk__in=[request_id, *peer_ids], status__in=WAITING)
                .order_by("created_at", "id").values_list("pk", "text"))
    if not rows:
        return "skipped"
    texts = [text for _, text in rows]
    try:
        results = classifier.classify_batch(texts)
    except TRANSIENT_ERRORS as exc:
        if self.request.retries < self.max_retries:
            logger.warning("transient error classifying %s (attempt %s): %s", request_id, self.request.retries + 1, exc)
            raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries),
                             args=[request_id], kwargs={"peer_ids": list(peer_ids)})
        results = [classifier.fallback(text, f"classifier failed after {self.max_retries} retries: {exc}")
                   for text in texts]
    except Exception as exc:  # noqa: BLE001 - a classifier bug must not lose requests
        logger.exception("classifier error for batch led by %s; using rules fallback", request_id)
        results = [classifier.fallback(text, f"classifier error: {exc!r}") for text in texts]
    recorded = 0
    for (pk, _), result in zip(rows, results):
        detail = dict(result.detail, batch={"leader": request_id, "size": len(rows)})
        recorded += _record(pk, result, detail)
    return "classified" if recorded else "skipped"


def _record(pk, result, detail):
    return services.record_classification(
        pk,
        urgency=result.urgency,
        predicted_output_tokens=result.predicted_output_tokens,
        model_urgency=result.model_urgency,
        rule_urgency=result.rule_urgency,
        rule_reason=result.rule_reason,
        classifier_name=result.classifier_name,
        classifier_detail=detail,
        needs_review=result.needs_review,
    )
