"""What the inference worker last reported: its queue order and throughput."""
from django.db import models


class WorkerHeartbeat(models.Model):
    worker_name = models.CharField(max_length=100, unique=True)
    queue_order = models.JSONField(default=list, help_text="Request ids in the scheduler's serving order.")
    stats = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.worker_name} at {self.updated_at:%H:%M:%S}"
