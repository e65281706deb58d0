"""Writes to medical requests. Every state change goes through here."""
import logging

from django.db import transaction
from django.utils import timezone

from triage_site.classification import rules
from triage_site.dispatch import events, worker_link

from .models import MedicalRequest, Status

logger = logging.getLogger(__name__)


def submit_request(*, text, caller_name="", callback_number="", location=""):
    """Store the request first, then hand it to classification once the row is committed.

    The safety rules (a fraction of a millisecond of regular expressions) run here already: their
    finding is on the board at once, and a classification backlog is worked through red flags first."""
    found = rules.red_flags(text)
    request = MedicalRequest.objects.create(
        text=text, caller_name=caller_name, callback_number=callback_number, location=location,
        rule_urgency=found.level, rule_reason=found.reason[:500],
    )
    transaction.on_commit(lambda: after_submit(request.pk))
    return request


def after_submit(request_id):
    events.publish_request_changed(request_id)
    enqueue_classification(request_id)


def enqueue_classification(request_id):
    """Send the classification task; a broker outage leaves the request stored as `received`.

    Stored requests that were never classified are sent again by `resend_unclassified`.
    """
    from triage_site.classification.tasks import classify_request

    try:
        classify_request.delay(request_id)
    except Exception:  # broker down or unreachable: the row is safe, retry later
        logger.exception("could not enqueue classification of request %s; it stays received", request_id)
        return False
    return True


def resend_unclassified(older_than_seconds=30):
    """Re-enqueue requests stuck before classification (broker outage, lost task)."""
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    stuck = MedicalRequest.objects.filter(
        status__in=(Status.RECEIVED, Status.CLASSIFYING), created_at__lt=cutoff
    ).values_list("pk", flat=True)
    return sum(enqueue_classification(pk) for pk in stuck)


def record_classification(request_id, *, urgency, predicted_output_tokens, model_urgency=None,
                          rule_urgency=None, rule_reason="", classifier_name="", classifier_detail=None,
                          needs_review=False):
    """Store the classifier's verdict, queue the request and wake the inference worker.

    Idempotent: a request already past classification is left as it is.
    """
    now = timezone.now()
    updated = MedicalRequest.objects.filter(
        pk=request_id, status__in=(Status.RECEIVED, Status.CLASSIFYING)
    ).update(
        urgency=urgency,
        predicted_output_tokens=predicted_output_tokens,
        model_urgency=model_urgency,
        rule_urgency=rule_urgency,
        rule_reason=rule_reason[:500],
        classifier_name=classifier_name[:200],
        classifier_detail=classifier_detail or {},
        needs_review=needs_review,
        classified_at=now,
        queued_at=now,
        status=Status.QUEUED,
    )
    if updated:
        worker_link.notify_worker({"event": "queued", "request_id": request_id})
        events.publish_request_changed(request_id)
    return bool(updated)


def mark_classifying(request_id):
    """Claim a received request for classification; True only for the one caller that claimed it."""
    updated = MedicalRequest.objects.filter(pk=request_id, status=Status.RECEIVED).update(
        status=Status.CLASSIFYING
    )
    if updated:
        events.publish_request_changed(request_id)
    return bool(updated)


def requeue_interrupted():
    """At worker start: generation that was in progress is lost with the process; serve it again."""
    return MedicalRequest.objects.filter(status=Status.RUNNING).update(
        status=Status.QUEUED, answer="", generated_tokens=0, started_at=None, first_token_at=None
    )


def mark_running(request_id, *, prompt_tokens):
    now = timezone.now()
    updated = MedicalRequest.objects.filter(pk=request_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=now, first_token_at=now, prompt_tokens=prompt_tokens
    )
    if updated:
        events.publish_request_changed(request_id)
    return bool(updated)


def save_progress(request_id, *, answer, generated_tokens):
    MedicalRequest.objects.filter(pk=request_id, status=Status.RUNNING).update(
        answer=answer, generated_tokens=generated_tokens
    )


def mark_done(request_id, *, answer, generated_tokens):
    """Store the finished answer once: only a request still open can finish."""
    updated = MedicalRequest.objects.filter(pk=request_id, status__in=(Status.QUEUED, Status.RUNNING)).update(
        status=Status.DONE, answer=answer, generated_tokens=generated_tokens, finished_at=timezone.now()
    )
    if updated:
        events.publish_request_changed(request_id)
    return bool(updated)


def mark_failed(request_id, *, error):
    updated = MedicalRequest.objects.filter(pk=request_id).exclude(status=Status.DONE).update(
        status=Status.FAILED, error=str(error)[:2000], finished_at=timezone.now()
    )
    if updated:
        events.publish_request_changed(request_id)
    return bool(updated)
