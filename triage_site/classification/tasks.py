"""The Celery task that classifies a stored request and queues it for generation."""
from celery import shared_task

from triage_site.intake import services
from triage_site.intake.models import MedicalRequest, Status

from .classifier import classify


@shared_task(bind=True, acks_late=True, max_retries=8, retry_backoff=True, retry_backoff_max=60,
             autoretry_for=(ConnectionError, TimeoutError))
def classify_request(self, request_id):
    """Idempotent: a request that is no longer waiting for classification is left alone."""
    request = MedicalRequest.objects.filter(pk=request_id).first()
    if request is None or request.status not in (Status.RECEIVED, Status.CLASSIFYING):
        return "skipped"
    services.mark_classifying(request_id)
    result = classify(request.text)
    services.record_classification(
        request_id,
        urgency=result.urgency,
        predicted_output_tokens=result.predicted_output_tokens,
        model_urgency=result.model_urgency,
        rule_urgency=result.rule_urgency,
        rule_reason=result.rule_reason,
        classifier_name=result.classifier_name,
        classifier_detail=result.detail,
        needs_review=result.needs_review,
    )
    return "classified"
