"""The board with several inference workers (docs/cluster.md): each worker's health, and which one holds each
request; a worker that stopped reporting is flagged within two lease periods."""
import pytest
from django.utils import timezone

from triage_site.dispatch import selectors
from triage_site.dispatch.models import WorkerHeartbeat
from triage_site.intake.models import MedicalRequest, Status

pytestmark = pytest.mark.django_db


def heartbeat(name, seconds_ago, queue_order=(), **stats):
    beat = WorkerHeartbeat.objects.create(worker_name=name, queue_order=list(queue_order), stats=stats)
    WorkerHeartbeat.objects.filter(pk=beat.pk).update(updated_at=timezone.now() - timezone.timedelta(seconds=seconds_ago))


def test_each_worker_is_listed_with_its_health_and_a_silent_one_is_flagged_after_two_leases(settings):
    settings.TRIAGE_WORKER_LEASE_S = 3
    a = MedicalRequest.objects.create(text="a", status=Status.RUNNING, urgency=1, claimed_by="gpu-1")
    b = MedicalRequest.objects.create(text="b", status=Status.QUEUED, urgency=2, claimed_by="gpu-2")
    c = MedicalRequest.objects.create(text="c", status=Status.QUEUED, urgency=2, claimed_by="gpu-2")
    heartbeat("gpu-1", 1, [a.pk], tokens_per_second=120.5, running=1, waiting=0, room=15)
    heartbeat("gpu-2", 2, [c.pk, b.pk], tokens_per_second=80.0, running=0, waiting=2, room=14)
    heartbeat("gpu-3", 7, [], running=3)    # 7 s > 2 x 3 s: silent
    heartbeat("gpu-old", 7200, [])           # gone for hours: not listed
    board = selectors.board_snapshot()
    workers = {w["name"]: w for w in board["workers"]}
    assert set(workers) == {"gpu-1", "gpu-2", "gpu-3"}
    assert workers["gpu-1"]["alive"] and workers["gpu-1"]["tokens_per_second"] == 120.5 and workers["gpu-1"]["room"] == 15
    assert not workers["gpu-3"]["alive"] and workers["gpu-3"]["state"] == "silent"
    rows = {row["id"]: row for row in board["open"]}
    assert rows[a.pk]["worker"] == "gpu-1" and rows[b.pk]["worker"] == "gpu-2"
    # positions come from the queue of the worker that holds each request
    assert (rows[a.pk]["queue_position"], rows[c.pk]["queue_position"], rows[b.pk]["queue_position"]) == (1, 1, 2)


def test_each_replica_checks_its_own_heartbeat():
    from django.core.management import CommandError, call_command

    heartbeat("container-a:1", 2)
    heartbeat("container-b:1", 300)
    call_command("worker_health", "--max-age", "30", "--host", "container-a")
    call_command("worker_health", "--max-age", "30", "--name", "container-a:1")
    with pytest.raises(CommandError, match="container-b:1 is 300 s old"):
        call_command("worker_health", "--max-age", "30", "--host", "container-b")
    with pytest.raises(CommandError, match="on host container-c"):
        call_command("worker_health", "--max-age", "30", "--host", "container-c")
