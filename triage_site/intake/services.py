"""Writes to medical requests. Every state change goes through here (reads are in selectors.py)."""
import logging

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from triage_site.classification import rules
from triage_site.live import events, worker_link

from . import alerts
from .models import AWAITING_CLASSIFICATION, BEING_GENERATED, MedicalRequest, Status

logger = logging.getLogger(__name__)


def store_request(*, text, caller_name="", callback_number="", location=""):
    """Save a new request as `received`; dashboards hear of it once the row is committed.

    The safety rules (a fraction of a millisecond of regular expressions) run here, once: their finding is
    on the board at once, a classification backlog is worked through red flags first, and the classifier
    is handed the stored findings instead of finding them again."""
    found = rules.red_flags(text)  # reads the text as seen (reading.readable) itself
    request = MedicalRequest.objects.create(
        text=text, caller_name=caller_name, callback_number=callback_number, location=location,
        rule_urgency=found.level, rule_reason=found.reason[:500], rule_findings=found.as_dict(),
    )
    transaction.on_commit(lambda: events.publish_request_changed(request.pk))
    return request


def claim_for_classification(request_id):
    """Atomically move a request from received to classifying; True only for the one caller that claimed it."""
    updated = MedicalRequest.objects.filter(pk=request_id, status=Status.RECEIVED).update(
        status=Status.CLASSIFYING
    )
    if updated:
        events.publish_request_changed(request_id)
    return bool(updated)


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
        if claim_for_classification(pk):
            claimed.append(pk)
    return claimed


def record_classification(request_id, *, urgency, predicted_output_tokens, model_urgency=None,
                          rule_urgency=None, rule_reason="", classifier_name="", classifier_detail=None,
                          needs_review=False, cards=(), card_texts=()):
    """Store the classifier's verdict and the protocol cards chosen with it, queue the request and wake the
    inference worker.

    Idempotent: a request already past classification is left as it is.
    """
    now = timezone.now()
    raised = {"alerted_at": Coalesce(F("alerted_at"), Value(now))} if alerts.acknowledge_target(urgency) else {}
    updated = MedicalRequest.objects.filter(pk=request_id, status__in=AWAITING_CLASSIFICATION).update(
        **raised,
        urgency=urgency,
        predicted_output_tokens=predicted_output_tokens,
        model_urgency=model_urgency,
        rule_urgency=rule_urgency,
        rule_reason=rule_reason[:500],
        classifier_name=classifier_name[:200],
        classifier_detail=classifier_detail or {},
        needs_review=needs_review,
        cards=list(cards),
        card_texts=list(card_texts),
        classified_at=now,
        queued_at=now,
        status=Status.QUEUED,
    )
    if updated:
        worker_link.notify_worker({"event": "queued", "request_id": request_id})
        events.publish_request_changed(request_id)
    return bool(updated)


def _held(queryset, claim):
    """Only the claim's holder may write (claims.py): `claim` is (worker, fencing token); None for callers that
    hold no claim (tests, tools)."""
    if claim is None:
        return queryset
    worker, token = claim
    return queryset.filter(claimed_by=worker, claim_token=token)


def mark_running(request_id, *, prompt_tokens, claim=None):
    """The first token came. A request resumed by another worker keeps the time of its first token."""
    now = timezone.now()
    updated = _held(MedicalRequest.objects.filter(pk=request_id, status=Status.QUEUED), claim).update(
        status=Status.RUNNING, started_at=Coalesce(F("started_at"), Value(now)),
        first_token_at=Coalesce(F("first_token_at"), Value(now)), prompt_tokens=prompt_tokens
    )
    if updated:
        events.publish_request_changed(request_id)
    return bool(updated)


def storable_answer(answer):
    """The answer as a text column can hold it: a model may emit a NUL character, which PostgreSQL refuses
    (and a step that failed on it would stall every request the worker holds)."""
    return answer.replace("\x00", "\ufffd")


def save_progress(request_id, *, answer, generated_tokens, claim=None):
    return bool(_held(MedicalRequest.objects.filter(pk=request_id, status=Status.RUNNING), claim).update(
        answer=storable_answer(answer), generated_tokens=generated_tokens
    ))


def mark_done(request_id, *, answer, generated_tokens, claim=None):
    """Store the finished answer once: only a request still open can finish."""
    updated = _held(MedicalRequest.objects.filter(pk=request_id, status__in=BEING_GENERATED), claim).update(
        status=Status.DONE, answer=storable_answer(answer), generated_tokens=generated_tokens,
        finished_at=timezone.now()
    )
    if updated:
        events.publish_request_changed(request_id)
    return bool(updated)


def mark_withdrawn(request_id, *, answer, generated_tokens, reason, claim=None):
    """Finish a request whose answer degenerated (repeats, loops, echoes): done, but marked withdrawn so it is
    not relayed; the answer is kept for the audit."""
    withdrawn = f"withdrawn: {reason}"[:300]
    updated = _held(MedicalRequest.objects.filter(pk=request_id, status__in=BEING_GENERATED), claim).update(
        status=Status.DONE, answer=storable_answer(answer), generated_tokens=generated_tokens,
        answer_withdrawn=withdrawn,
        finished_at=timezone.now()
    )
    if updated:
        events.publish_request_changed(request_id)
    return bool(updated)


def mark_failed(request_id, *, error, claim=None):
    updated = _held(MedicalRequest.objects.filter(pk=request_id), claim).exclude(status=Status.DONE).update(
        status=Status.FAILED, error=str(error)[:2000], finished_at=timezone.now()
    )
    if updated:
        events.publish_request_changed(request_id)
    return bool(updated)
