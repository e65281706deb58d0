"""What a dispatcher can do from the board's socket: acknowledge an alert, confirm or change an urgency.

Each action goes through the same service (and audit) as the request page's forms; the answer is a
`result` message the board shows beside the row.
"""
from django.core.exceptions import PermissionDenied, ValidationError

from scheduler import urgency
from triage_site.intake import alerts, overrides
from triage_site.intake.models import MedicalRequest

ACTIONS = ("acknowledge", "confirm_urgency", "change_urgency")


def _request_id(content):
    value = content.get("request_id")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError("Name the request: {\"request_id\": <a request number>}.")
    return value


def _acknowledge(user, request_id, content):
    ack = alerts.acknowledge(request_id, user=user)
    return f"Request {request_id} acknowledged after {ack.seconds_to_acknowledge:.0f} s."


def _confirm(user, request_id, content):
    override = overrides.confirm_urgency(request_id, user=user)
    return f"Urgency {override.new_urgency} of request {request_id} confirmed."


def _change(user, request_id, content):
    new_urgency = content.get("urgency")
    if not urgency.is_level(new_urgency):
        raise ValidationError(f"Choose a level from {urgency.MOST_URGENT} to {urgency.LEAST_URGENT}.")
    overrides.override_urgency(request_id, new_urgency=new_urgency, reason=content.get("reason"), user=user)
    return f"Urgency of request {request_id} changed to {new_urgency}."


_HANDLERS = {"acknowledge": _acknowledge, "confirm_urgency": _confirm, "change_urgency": _change}


def perform(user, content):
    """Run one board action; always returns a `result` message, never raises for a person's mistake."""
    action = content.get("type")
    result = {"type": "result", "action": action, "request_id": content.get("request_id"), "ok": False}
    try:
        request_id = _request_id(content)
        result["message"] = _HANDLERS[action](user, request_id, content)
        result["ok"] = True
    except (ValidationError, PermissionDenied) as error:
        result["message"] = " ".join(getattr(error, "messages", None) or [str(error)])
    except MedicalRequest.DoesNotExist:
        result["message"] = f"There is no request {content.get('request_id')}."
    return result
