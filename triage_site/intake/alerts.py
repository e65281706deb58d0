"""Alerts for the most urgent requests, which a dispatcher must acknowledge.

A request raises an alert when its urgency first reaches a level with an acknowledgement target
(settings.TRIAGE_ACKNOWLEDGE_TARGETS_S, by default levels 0 and 1): at classification, or when a
supervisor raises it. The first dispatcher to acknowledge it is recorded, with the time it took.
"""
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from triage_site.live import events
from triage_site.permissions import is_dispatcher

from .models import AlertAcknowledgement, MedicalRequest


def acknowledge_target(urgency):
    """Seconds within which an alert of this level should be acknowledged; None: the level raises none."""
    if urgency is None:
        return None
    return settings.TRIAGE_ACKNOWLEDGE_TARGETS_S[urgency]


def alert_shown(alerted_at, target, acknowledged):
    """Whether a request's alert is shown: raised, and either its level still asks for acknowledgement or someone
    acknowledged it (an alert lowered below the alert levels before anyone did no longer asks for it)."""
    return alerted_at is not None and (target is not None or acknowledged)


def alert_levels():
    return [level for level, target in enumerate(settings.TRIAGE_ACKNOWLEDGE_TARGETS_S) if target is not None]


def alerted_at(urgency, already_alerted_at, now):
    """When the alert of a request now at `urgency` was raised: kept once raised, `now` if this level raises one."""
    if already_alerted_at is not None:
        return already_alerted_at
    return now if acknowledge_target(urgency) is not None else None


def acknowledge(request_id, *, user):
    """Record that `user` saw the alert. A second acknowledgement is refused, naming who was first."""
    if not is_dispatcher(user):
        raise PermissionDenied("Only dispatchers may acknowledge alerts.")
    now = timezone.now()
    try:
        with transaction.atomic():
            medical_request = MedicalRequest.objects.select_for_update().filter(pk=request_id).first()
            if medical_request is None:
                raise ValidationError(f"There is no request {request_id}.")
            if medical_request.alerted_at is None:
                raise ValidationError(f"Request {request_id} raised no alert: only levels "
                                      f"{', '.join(map(str, alert_levels()))} are acknowledged.")
            earlier = AlertAcknowledgement.objects.filter(request=medical_request).select_related(
                "acknowledged_by").first()
            if earlier is not None:
                raise ValidationError(f"Request {request_id} was already acknowledged by "
                                      f"{earlier.acknowledged_by.username} at "
                                      f"{timezone.localtime(earlier.acknowledged_at):%H:%M:%S}.")
            acknowledgement = AlertAcknowledgement.objects.create(
                request=medical_request, acknowledged_by=user, acknowledged_at=now,
                alerted_at=medical_request.alerted_at, urgency=medical_request.urgency,
                seconds_to_acknowledge=round(max((now - medical_request.alerted_at).total_seconds(), 0.0), 3),
            )
    except IntegrityError:  # another dispatcher's acknowledgement committed first
        return acknowledge(request_id, user=user)
    events.publish_request_changed(request_id)
    return acknowledgement


def export_rows(acknowledgements):
    """Acknowledgements as audit rows (one dict each), oldest first."""
    for ack in acknowledgements.select_related("acknowledged_by").order_by("acknowledged_at", "id"):
        yield {
            "kind": "acknowledgement", "request_id": ack.request_id, "urgency": ack.urgency,
            "alerted_at": ack.alerted_at.isoformat(), "acknowledged_at": ack.acknowledged_at.isoformat(),
            "acknowledged_by": ack.acknowledged_by.username, "seconds_to_acknowledge": ack.seconds_to_acknowledge,
        }
