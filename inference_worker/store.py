"""The worker's only door to Django: reads queued requests, writes progress and answers."""
import os
import socket
from dataclasses import dataclass
from datetime import datetime


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triage_site.settings")
    import django

    django.setup()


@dataclass(frozen=True)
class QueuedRequest:
    request_id: int
    text: str
    location: str
    urgency: int
    predicted_output_tokens: int
    created_at: datetime


class RequestStore:
    """Database operations the inference service needs, and nothing else."""

    def __init__(self, worker_name=None):
        from triage_site.dispatch import events, worker_link
        from triage_site.intake import services
        from triage_site.intake.models import MedicalRequest, Status

        self._events = events
        self._services = services
        self._model = MedicalRequest
        self._status = Status
        self.worker_name = worker_name or f"{socket.gethostname()}:{os.getpid()}"
        self.inbox = worker_link.WorkerInbox()

    def recover_interrupted(self):
        return self._services.requeue_interrupted()

    def resend_unclassified(self, older_than_seconds):
        return self._services.resend_unclassified(older_than_seconds=older_than_seconds)

    def queued(self, exclude_ids=()):
        rows = (
            self._model.objects.filter(status=self._status.QUEUED)
            .exclude(pk__in=list(exclude_ids))
            .values_list("pk", "text", "location", "urgency", "predicted_output_tokens", "created_at")
        )
        return [
            QueuedRequest(pk, text, location, 4 if urgency is None else urgency, predicted or 200, created)
            for pk, text, location, urgency, predicted, created in rows
        ]

    def open_urgencies(self, request_ids):
        """Current urgency of each still-open request among `request_ids` (closed ones are absent)."""
        open_statuses = (self._status.QUEUED, self._status.RUNNING)
        return dict(
            self._model.objects.filter(pk__in=list(request_ids), status__in=open_statuses).values_list(
                "pk", "urgency"
            )
        )

    def mark_running(self, request_id, prompt_tokens):
        return self._services.mark_running(request_id, prompt_tokens=prompt_tokens)

    def save_progress(self, request_id, answer, generated_tokens):
        self._services.save_progress(request_id, answer=answer, generated_tokens=generated_tokens)

    def publish_delta(self, request_id, text, generated_tokens):
        self._events.publish_answer_delta(request_id, text=text, generated_tokens=generated_tokens)

    def mark_done(self, request_id, answer, generated_tokens):
        return self._services.mark_done(request_id, answer=answer, generated_tokens=generated_tokens)

    def mark_failed(self, request_id, error):
        return self._services.mark_failed(request_id, error=error)

    def heartbeat(self, queue_order, stats):
        from django.utils import timezone

        from triage_site.dispatch.models import WorkerHeartbeat, WorkerSample

        queue_order = list(queue_order)
        WorkerHeartbeat.objects.update_or_create(
            worker_name=self.worker_name, defaults={"queue_order": queue_order, "stats": stats}
        )
        # A time series for the dashboard's tokens/s chart; rows older than an hour are pruned.
        now = timezone.now()
        active = int(stats.get("active_requests") or 0)
        WorkerSample.objects.create(
            worker_name=self.worker_name, recorded_at=now,
            tokens_per_second=float(stats.get("tokens_per_second") or 0.0),
            active_requests=active,
            queued_requests=max(len(queue_order) - int(stats.get("running", active) or 0), 0),
        )
        self._samples_written = getattr(self, "_samples_written", 0) + 1
        if self._samples_written % 60 == 1:
            WorkerSample.objects.filter(
                recorded_at__lt=now - timezone.timedelta(seconds=WorkerSample.KEEP_SECONDS)
            ).delete()
        self._events.publish_worker_stats(dict(stats, at=now.timestamp()))

    def close(self):
        from django.db import connections

        self.inbox.close()
        connections.close_all()
