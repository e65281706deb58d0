"""Reads of medical requests for the pages, the classification task and the inference worker (services write)."""
from . import alerts
from .models import AWAITING_CLASSIFICATION, BEING_GENERATED, AlertAcknowledgement, MedicalRequest, Status


def is_awaiting_classification(request_id):
    return MedicalRequest.objects.filter(pk=request_id, status__in=AWAITING_CLASSIFICATION).exists()


def awaiting_classification(request_ids):
    """(id, text, rule_findings) of those of `request_ids` still waiting for classification, oldest first."""
    return list(MedicalRequest.objects.filter(pk__in=request_ids, status__in=AWAITING_CLASSIFICATION)
                .order_by("created_at", "id").values_list("pk", "text", "rule_findings"))


def unclassified_before(moment):
    """Ids of requests received before `moment` and still not classified (a lost task, a broker outage)."""
    return list(MedicalRequest.objects.filter(status__in=AWAITING_CLASSIFICATION, created_at__lt=moment)
                .values_list("pk", flat=True))


def open_claims(request_ids):
    """{id: (urgency, claim token, holder)} of the requests among `request_ids` still queued or running (closed
    ones are absent); the holder is "" while a request waits unclaimed."""
    rows = MedicalRequest.objects.filter(pk__in=list(request_ids), status__in=BEING_GENERATED)
    return {pk: (urgency, token, holder)
            for pk, urgency, token, holder in rows.values_list("pk", "urgency", "claim_token", "claimed_by")}


def urgency_prompt(medical_request):
    """What the "confirm urgency" prompt shows, or None when no open request awaits a person's check.

    The classifier stores its detail as free JSON; only well-formed decision points are shown."""
    if not (medical_request.needs_review and medical_request.is_open and medical_request.urgency is not None):
        return None
    detail = medical_request.classifier_detail if isinstance(medical_request.classifier_detail, dict) else {}
    raw = detail.get("decision_points")
    points = [
        {key: str(point.get(key) or "") for key in ("point", "level", "reason", "evidence")}
        for point in (raw if isinstance(raw, list) else []) if isinstance(point, dict)
    ]
    return {
        "level": medical_request.urgency,
        "label": medical_request.get_urgency_display(),
        "reasoning": str(detail.get("reasoning") or ""),
        "decision_points": points,
    }


def alert_state(medical_request):
    """The request page's alert box: None without an alert, else its target and acknowledgement (or None)."""
    if medical_request.alerted_at is None:
        return None
    ack = AlertAcknowledgement.objects.filter(request=medical_request).select_related("acknowledged_by").first()
    target = alerts.acknowledge_target(medical_request.urgency)
    if not alerts.alert_shown(medical_request.alerted_at, target, ack is not None):
        return None
    return {"alerted_at": medical_request.alerted_at, "target_s": target, "acknowledgement": ack}


def recorded_answer_lengths():
    """(text, predicted_output_tokens, generated_tokens) of every finished request that generated an answer: the
    real lengths the length predictor is measured and refitted against. The length is the engine's work for the
    request, so answers the guard withdrew count with the tokens generated until then; failed requests do not."""
    return list(MedicalRequest.objects.filter(status=Status.DONE, generated_tokens__gt=0,
                                              predicted_output_tokens__isnull=False)
                .order_by("id").values_list("text", "predicted_output_tokens", "generated_tokens"))
