"""A stored simulation run: its parameters, where its workload came from, its progress and its compact result."""
from django.conf import settings
from django.db import models
from django.urls import reverse


class SimulationRun(models.Model):
    class Source(models.TextChoices):
        SYNTHETIC = "synthetic", "Synthetic workload"
        RECORDED = "recorded", "Recorded traffic"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    # SimulationParams fields shared by every policy x seed (policy and seed are filled in per run).
    params = models.JSONField(default=dict)
    policies = models.JSONField(default=list)
    seeds = models.JSONField(default=list)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.SYNTHETIC)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    # Recorded runs: the trace records built from the window when the run was created (kept, so the run
    # can be repeated exactly even after the requests change) and notes on how they were mapped.
    trace = models.JSONField(default=list, blank=True)
    trace_notes = models.JSONField(default=dict, blank=True)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="simulation_runs")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Simulation run {self.pk} ({self.get_status_display()})"

    def get_absolute_url(self):
        return reverse("simulation:detail", args=[self.pk])

    @property
    def is_finished(self):
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def summary(self):
        """One line for the list of runs."""
        if self.source == self.Source.RECORDED:
            where = f"recorded {self.window_start:%Y-%m-%d %H:%M} – {self.window_end:%Y-%m-%d %H:%M}"
        else:
            p = self.params
            where = (f"gap {p.get('user_request_gap')} s, burst ≤ {p.get('max_concurrent_user_requests')}, "
                     f"{p.get('gap_num')} instants")
        return f"{', '.join(self.policies)} · {self.params.get('setting')} · {where}"
