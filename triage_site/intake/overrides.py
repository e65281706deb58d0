"""Urgency overrides by supervisors: audited, applied by the running worker at its next step."""
import json

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from scheduler import urgency
from triage_site.guidance import selection
from triage_site.live import events, worker_link
from triage_site.permissions import is_supervisor

from . import alerts
from .models import BEING_GENERATED, OPEN_STATUSES, MedicalRequest, Status, UrgencyOverride
from .text_checks import reject_control_characters

CONFIRM_REASON = "confirmed classifier urgency"
REASON_MAX_LENGTH = 2000


def _require(user):
    if not is_supervisor(user):
        raise PermissionDenied("Only supervisors may change a request's urgency.")


def clean_reason(reason):
    """The one rule for an override's reason, whether it comes from a form or from the board's socket."""
    if reason is None:
        reason = ""
    if not isinstance(reason, str):
        raise ValidationError("The reason must be text, e.g. \"caller now unresponsive\".")
    reason = reason.strip()
    if not reason:
        raise ValidationError("Give a reason for the change; it is kept in the audit log.")
    if len(reason) > REASON_MAX_LENGTH:
        raise ValidationError(f"The reason is too long: at most {REASON_MAX_LENGTH:,} characters "
                              f"(it has {len(reason):,}).")
    reject_control_characters(reason)
    return reason


def _apply(medical_request, new_urgency, reason, user, bulk_label="", reviewed=True):
    """Write the audit entry and the new level. A person who looked at this request (`reviewed`) also
    settles the classifier's doubt; a bulk action by phrase does not, so its rows keep their review flag."""
    override = UrgencyOverride.objects.create(
        request=medical_request, changed_by=user, old_urgency=medical_request.urgency, new_urgency=new_urgency,
        reason=reason, model_urgency=medical_request.model_urgency, rule_urgency=medical_request.rule_urgency,
        rule_reason=medical_request.rule_reason, bulk_label=bulk_label,
    )
    changes = {"urgency": new_urgency, **_cards_for(medical_request, new_urgency),
               "alerted_at": alerts.alerted_at(new_urgency, medical_request.alerted_at, timezone.now())}
    restarted = "cards" in changes and medical_request.status in BEING_GENERATED
    if restarted:
        changes.update(_restarted_answer(medical_request, changes["classifier_detail"]))
    if reviewed:
        changes["needs_review"] = False
    MedicalRequest.objects.filter(pk=medical_request.pk).update(**changes)
    request_id = medical_request.pk
    changed = new_urgency != medical_request.urgency

    def announce():
        if changed or restarted:
            worker_link.notify_worker({"event": "urgency_changed", "request_id": request_id})
        events.publish_request_changed(request_id)

    transaction.on_commit(announce)
    return override


def _cards_for(medical_request, new_urgency):
    """The protocol cards for the new level; those shown before stay in the classifier detail, for the audit."""
    chosen = selection.rechoose(medical_request.text, new_urgency, medical_request.classifier_detail)
    cards = [card.reference() for card in chosen]
    if cards == medical_request.cards:
        return {}
    detail = dict(medical_request.classifier_detail or {})
    detail["cards_shown_before"] = [*detail.get("cards_shown_before", []), *medical_request.cards]
    return {"cards": cards, "card_texts": selection.texts_kept(medical_request.card_texts, chosen),
            "classifier_detail": detail}


def _restarted_answer(medical_request, detail):
    """The answer is grounded in the cards and checked against them, so new cards restart it: the request goes
    back to the queue with no answer and a new claim token, which makes the worker drop the old generation (its
    writes are fenced out by the token) and claim it again with the new cards. What was written before stays in
    the classifier detail, beside the cards it followed, for the audit."""
    restart = {"status": Status.QUEUED, "answer": "", "generated_tokens": 0, "claimed_by": "",
               "lease_expires_at": None, "claim_token": F("claim_token") + 1}
    if medical_request.answer:
        before = {"answer": medical_request.answer, "cards": medical_request.cards}
        restart["classifier_detail"] = {**detail, "answers_before": [*detail.get("answers_before", []), before]}
    return restart


def _open_for_update(request_id):
    medical_request = MedicalRequest.objects.select_for_update().get(pk=request_id)
    if medical_request.status not in OPEN_STATUSES:
        raise ValidationError(
            f"Request {request_id} is already {medical_request.get_status_display().lower()}; "
            "only open requests can be re-prioritised."
        )
    return medical_request


def override_urgency(request_id, *, new_urgency, reason, user):
    """Change one open request's urgency. Finished requests are refused with a clear message."""
    _require(user)
    reason = clean_reason(reason)
    if not urgency.is_level(new_urgency):
        raise ValidationError(f"Urgency must be a level from {urgency.MOST_URGENT} (immediate) to "
                              f"{urgency.LEAST_URGENT} (non-urgent).")
    with transaction.atomic():
        medical_request = _open_for_update(request_id)
        if medical_request.urgency == new_urgency:
            raise ValidationError(f"Request {request_id} already has urgency {new_urgency}.")
        return _apply(medical_request, new_urgency, reason, user)


def confirm_urgency(request_id, *, user):
    """Keep the level of a request the classifier was unsure of. Recorded like any override (old level ==
    new level), so the audit log and the exported labels show that a person checked it."""
    _require(user)
    with transaction.atomic():
        medical_request = _open_for_update(request_id)
        if not medical_request.needs_review or medical_request.urgency is None:
            raise ValidationError(f"Request {request_id} has no classifier urgency awaiting confirmation.")
        return _apply(medical_request, medical_request.urgency, CONFIRM_REASON, user)


def open_requests_mentioning(phrase):
    phrase = phrase.strip()
    if len(phrase) < 3:
        raise ValidationError("Give at least 3 characters to match in the text or location.")
    from django.db.models import Q

    return MedicalRequest.objects.filter(status__in=OPEN_STATUSES).filter(
        Q(text__icontains=phrase) | Q(location__icontains=phrase)
    )


def bulk_raise(requests, *, new_urgency, reason, user, label):
    """Raise every open request in `requests` to `new_urgency`; never lowers any. Returns overrides made."""
    _require(user)
    reason = clean_reason(reason)
    made = []
    with transaction.atomic():
        for medical_request in requests.select_for_update().filter(status__in=OPEN_STATUSES).order_by("pk"):
            if medical_request.urgency is not None and medical_request.urgency <= new_urgency:
                continue
            made.append(_apply(medical_request, new_urgency, reason, user, bulk_label=label[:200], reviewed=False))
    return made


def export_jsonl(overrides):
    """Overrides as evaluation data for `manage.py evaluate_classifier --data` (text and label 0..4).

    A request overridden several times contributes once, with the latest human label.
    """
    latest = {}
    for override in overrides.select_related("request").order_by("changed_at", "id"):
        latest[override.request_id] = override
    for override in latest.values():
        yield json.dumps({
            "text": override.request.text,
            "label": override.new_urgency,
            "model_urgency": override.model_urgency,
            "rule_urgency": override.rule_urgency,
            "reason": override.reason,
            "request_id": override.request_id,
            "changed_at": override.changed_at.isoformat(),
        }) + "\n"
