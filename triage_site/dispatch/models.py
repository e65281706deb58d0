"""What the inference worker last reported: its queue order and throughput."""
from django.db import models


class WorkerHeartbeat(models.Model):
    worker_name = models.CharField(max_length=100, unique=True)
    queue_order = models.JSONField(default=list, help_text="Request ids in the scheduler's serving order.")
    stats = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.worker_name} at {self.updated_at:%H:%M:%S}"


class WorkerSample(models.Model):
    """One heartbeat's throughput figures, kept for an hour for the dashboard's tokens/s chart."""

    KEEP_SECONDS = 3600

    worker_name = models.CharField(max_length=100)
    recorded_at = models.DateTimeField(db_index=True)
    tokens_per_second = models.FloatField(default=0.0)
    active_requests = models.PositiveIntegerField(default=0)
    queued_requests = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["recorded_at", "id"]

    def __str__(self):
        return f"{self.worker_name} {self.tokens_per_second} tok/s at {self.recorded_at:%H:%M:%S}"
