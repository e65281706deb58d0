"""Writes of what the inference worker reports: its heartbeat, and a time series for the board's charts."""
from django.utils import timezone

from triage_site.live import events

from .models import WorkerHeartbeat, WorkerSample

# Old samples are pruned every this many heartbeats of a process (about a minute at one a second).
PRUNE_EVERY = 60
_heartbeats_recorded = 0


def record_heartbeat(worker_name, queue_order, stats):
    """Store the worker's queue order and throughput, add a chart sample, tell the dashboards."""
    global _heartbeats_recorded
    WorkerHeartbeat.objects.update_or_create(worker_name=worker_name,
                                             defaults={"queue_order": queue_order, "stats": stats})
    now = timezone.now()
    active = int(stats.get("active_requests") or 0)
    WorkerSample.objects.create(
        worker_name=worker_name, recorded_at=now,
        tokens_per_second=float(stats.get("tokens_per_second") or 0.0),
        active_requests=active,
        queued_requests=max(len(queue_order) - int(stats.get("running", active) or 0), 0),
    )
    _heartbeats_recorded += 1
    if _heartbeats_recorded % PRUNE_EVERY == 1:
        WorkerSample.objects.filter(
            recorded_at__lt=now - timezone.timedelta(seconds=WorkerSample.KEEP_SECONDS)
        ).delete()
    events.publish_worker_stats(dict(stats, at=now.timestamp()))


def record_busy(worker_name, step_running_s):
    """The worker is inside one long engine step: renew its heartbeat and say for how long, keeping the rest
    of what it last reported. Dashboards read it at their next refresh (within a second)."""
    heartbeat = WorkerHeartbeat.objects.filter(worker_name=worker_name).first()
    if heartbeat is not None:
        WorkerHeartbeat.objects.filter(pk=heartbeat.pk).update(
            stats=dict(heartbeat.stats, step_running_s=step_running_s), updated_at=timezone.now())
