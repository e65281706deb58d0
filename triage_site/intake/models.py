"""A medical request, from intake to the finished answer."""
from django.db import models

from scheduler import urgency


class Urgency(models.IntegerChoices):
    """Emergency Severity Index style levels: lower is more urgent (names from scheduler.urgency)."""

    IMMEDIATE = 0, urgency.label(0)
    EMERGENT = 1, urgency.label(1)
    URGENT = 2, urgency.label(2)
    LESS_URGENT = 3, urgency.label(3)
    NON_URGENT = 4, urgency.label(4)


class Status(models.TextChoices):
    RECEIVED = "received", "Received"
    CLASSIFYING = "classifying", "Classifying"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


AWAITING_CLASSIFICATION = (Status.RECEIVED, Status.CLASSIFYING)
BEING_GENERATED = (Status.QUEUED, Status.RUNNING)
OPEN_STATUSES = AWAITING_CLASSIFICATION + BEING_GENERATED


class MedicalRequest(models.Model):
    text = models.TextField()
    caller_name = models.CharField(max_length=200, blank=True)
    callback_number = models.CharField(max_length=40, blank=True)
    location = models.CharField(max_length=300, blank=True)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED, db_index=True)
    urgency = models.PositiveSmallIntegerField(choices=Urgency.choices, null=True, blank=True)
    predicted_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    # What each source said, so that a reviewer can see why the urgency is what it is.
    model_urgency = models.PositiveSmallIntegerField(choices=Urgency.choices, null=True, blank=True)
    rule_urgency = models.PositiveSmallIntegerField(choices=Urgency.choices, null=True, blank=True)
    rule_reason = models.CharField(max_length=500, blank=True)
    # Every red flag found at intake (level, reasons, rule names), so the rules run once per request.
    rule_findings = models.JSONField(default=dict, blank=True)
    classifier_name = models.CharField(max_length=200, blank=True)
    classifier_detail = models.JSONField(default=dict, blank=True)
    needs_review = models.BooleanField(default=False)

    # The protocol cards shown with this request, as [{"id", "version", "title", "send_now"}]: part of the audit.
    cards = models.JSONField(default=list, blank=True)
    # The words of every card version it was shown, [Card.text()]: its page and its answer's prompt keep them after
    # the library changes (guidance.selection.shown_cards). Apart from `cards`, which the board reads for titles.
    card_texts = models.JSONField(default=list, blank=True)
    answer = models.TextField(blank=True)
    # Why the degeneration guard withdrew the model's answer ("" while it stands); the cards stay.
    answer_withdrawn = models.CharField(max_length=300, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    generated_tokens = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    # Which inference worker holds the request (docs/cluster.md): its name, until when, and the claim's fencing
    # token, which grows with every claim so that a worker that lost its lease can never write over the new holder.
    claimed_by = models.CharField(max_length=100, blank=True, db_index=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.PositiveBigIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # When its urgency first reached a level that must be acknowledged by a dispatcher (see alerts.py).
    alerted_at = models.DateTimeField(null=True, blank=True, db_index=True)
    classified_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    first_token_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["status", "urgency"]),
                   # the inference workers' claim order (claims.py): read in order, never sorted
                   models.Index(fields=["status", "urgency", "predicted_output_tokens", "created_at", "id"],
                                name="intake_claim_order")]

    def __str__(self):
        return f"Request {self.pk} ({self.get_status_display()})"

    @property
    def is_open(self):
        return self.status in OPEN_STATUSES


class AppendOnlyError(Exception):
    """Audit records are never changed or deleted."""


class UrgencyOverride(models.Model):
    """An audited change of a request's urgency by a person. Append-only."""

    request = models.ForeignKey(MedicalRequest, on_delete=models.PROTECT, related_name="overrides")
    changed_by = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="urgency_overrides")
    changed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    old_urgency = models.PositiveSmallIntegerField(choices=Urgency.choices, null=True)
    new_urgency = models.PositiveSmallIntegerField(choices=Urgency.choices)
    reason = models.TextField()
    # What the automatic triage had said when the person overrode it.
    model_urgency = models.PositiveSmallIntegerField(choices=Urgency.choices, null=True)
    rule_urgency = models.PositiveSmallIntegerField(choices=Urgency.choices, null=True)
    rule_reason = models.CharField(max_length=500, blank=True)
    bulk_label = models.CharField(max_length=200, blank=True, help_text="Set when part of a bulk action.")

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self):
        return f"Request {self.request_id}: {self.old_urgency} → {self.new_urgency} by {self.changed_by}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("Urgency overrides are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Urgency overrides are append-only.")


class AlertAcknowledgement(models.Model):
    """A dispatcher saw an urgent request's alert: who, when and how long after the alert. Append-only,
    one per request (the first dispatcher to acknowledge it)."""

    request = models.OneToOneField(MedicalRequest, on_delete=models.PROTECT, related_name="acknowledgement")
    acknowledged_by = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="acknowledgements")
    acknowledged_at = models.DateTimeField(db_index=True)
    alerted_at = models.DateTimeField()
    urgency = models.PositiveSmallIntegerField(choices=Urgency.choices)
    seconds_to_acknowledge = models.FloatField()

    class Meta:
        ordering = ["-acknowledged_at", "-id"]

    def __str__(self):
        return f"Request {self.request_id} acknowledged by {self.acknowledged_by} after {self.seconds_to_acknowledge:.0f} s"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("Acknowledgements are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Acknowledgements are append-only.")
