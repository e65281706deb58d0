"""Reads of medical requests for the classification task and the inference worker (services write)."""
from .models import AWAITING_CLASSIFICATION, BEING_GENERATED, MedicalRequest, Status


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


def queued_for_generation(exclude_ids=()):
    """(id, text, location, urgency, predicted_output_tokens, created_at) of every queued request."""
    return list(MedicalRequest.objects.filter(status=Status.QUEUED).exclude(pk__in=list(exclude_ids))
                .values_list("pk", "text", "location", "urgency", "predicted_output_tokens", "created_at"))


def open_urgencies(request_ids):
    """Current urgency of each request among `request_ids` still queued or running (closed ones are absent)."""
    return dict(MedicalRequest.objects.filter(pk__in=list(request_ids), status__in=BEING_GENERATED)
                .values_list("pk", "urgency"))
