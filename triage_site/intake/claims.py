"""Which inference worker generates which request: claims with leases and fencing tokens (docs/cluster.md).

One durable queue in the database, many workers. A worker claims queued requests in the cluster's order with
SELECT ... FOR UPDATE SKIP LOCKED, so two workers never claim the same request; each claim records the worker, a
lease expiry and a fencing token that grows with every claim. The worker renews its leases with its heartbeat,
and every write it makes carries its token (services.py, `claim=`), so a worker that lost its lease writes
nothing. An expired lease puts the request back in the queue with its partial answer, for another worker to
resume. Lease times are the database server's clock (NOW()), so the workers' clocks may disagree. SQLite (the
embedded mode) runs one worker: there the locking clauses are no-ops, which is safe alone.
"""
import os
import socket
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, IntegerField, Max, Q, Value, When
from django.db.models.functions import Now
from django.utils import timezone

from scheduler import targets
from triage_site.live import events, worker_link

from .models import BEING_GENERATED, MedicalRequest, Status

CLAIMED_FIELDS = ("pk", "text", "location", "urgency", "predicted_output_tokens", "created_at", "cards", "card_texts",
                  "answer", "claim_token")


NATIVE_ORDER = ["urgency", "predicted_output_tokens", "created_at", "pk"]  # served by the intake_claim_order index


def _overdue(now):
    """Per level above 0: waiting past the share of its first-token target at which deadline aging promotes it."""
    return [Q(urgency=level, created_at__lt=now - timedelta(seconds=targets.NEAR_SHARE * target))
            for level, target in enumerate(settings.TRIAGE_FIRST_TOKEN_TARGETS_S) if level > 0]


def cluster_order(queued, now):
    """The order workers claim in: urgency, with requests waiting past their share of the first-token target
    counted as class 0 behind the native ones (the worker's deadline aging, cluster-wide), then predicted work,
    then arrival. While nothing is overdue (the usual case) that is the plain order, which an index serves without
    sorting the queue: checking costs one indexed query."""
    overdue = _overdue(now)
    if settings.TRIAGE_SCHEDULER_AGING != "deadline" or not overdue:
        return NATIVE_ORDER
    any_overdue = overdue[0]
    for condition in overdue[1:]:
        any_overdue |= condition
    if not queued.filter(any_overdue).exists():
        return NATIVE_ORDER
    effective = Case(*[When(condition, then=Value(0)) for condition in overdue], default=F("urgency"),
                     output_field=IntegerField())
    return [effective.asc(), *NATIVE_ORDER]


def claim(worker, *, limit=None, lease_seconds, exclude_ids=(), more_urgent_than=None):
    """Claim up to `limit` (None: all) queued requests nobody holds, in cluster order, for `worker`. Returns the
    claimed rows (CLAIMED_FIELDS, the token the new one). `more_urgent_than`: only requests of a strictly more
    urgent level (a full worker taking an urgent request to preempt its least urgent work)."""
    now = timezone.now()
    with transaction.atomic():
        free = (Q(claimed_by="") | Q(lease_expires_at__lt=Now()) | Q(claimed_by=worker))
        candidates = MedicalRequest.objects.filter(free, status=Status.QUEUED).exclude(pk__in=list(exclude_ids))
        if more_urgent_than is not None:
            candidates = candidates.filter(urgency__lt=more_urgent_than)
        candidates = candidates.order_by(*cluster_order(candidates, now)).select_for_update(skip_locked=True,
                                                                                             of=("self",))
        ids = list((candidates[:limit] if limit is not None else candidates).values_list("pk", flat=True))
        if not ids:
            return []
        MedicalRequest.objects.filter(pk__in=ids).update(
            claimed_by=worker, lease_expires_at=Now() + timedelta(seconds=lease_seconds),
            claim_token=F("claim_token") + 1)
        rows = {row[0]: row for row in MedicalRequest.objects.filter(pk__in=ids).values_list(*CLAIMED_FIELDS)}
    return [rows[pk] for pk in ids]


def renew(worker, request_ids, *, lease_seconds):
    """Extend `worker`'s leases on `request_ids`; returns {id: token} of those it still holds (the others were
    taken over or closed: the worker must drop them)."""
    if not request_ids:
        return {}
    held = MedicalRequest.objects.filter(pk__in=list(request_ids), claimed_by=worker, status__in=BEING_GENERATED)
    held.update(lease_expires_at=Now() + timedelta(seconds=lease_seconds))
    return dict(held.values_list("pk", "claim_token"))


def release(worker, request_ids):
    """Give back requests `worker` holds but has not started (another worker may take them at once)."""
    released = MedicalRequest.objects.filter(pk__in=list(request_ids), claimed_by=worker, status=Status.QUEUED) \
        .update(claimed_by="", lease_expires_at=None)
    if released:
        worker_link.notify_worker({"event": "queued"})
    return released


def requeue_expired():
    """Requests whose holder stopped renewing (dead, paused, cut off) go back to the queue with their partial
    answer; the first token they had stays recorded. Any worker runs this on every reconciliation."""
    expired = MedicalRequest.objects.filter(status=Status.RUNNING, lease_expires_at__lt=Now())
    return _requeue(expired)


def recover_at_start(worker):
    """At a worker's start: its own earlier claims (a previous process of the same name) are lost with that
    process, so they are requeued now instead of when their leases expire; other workers' claims are never
    touched. SQLite runs one worker (see refuse_second_worker), so there every running request was this
    deployment's only worker's."""
    own = Q(claimed_by=worker)
    if connection.vendor == "sqlite":
        own |= Q(status=Status.RUNNING)
    else:
        own |= Q(status=Status.RUNNING, claimed_by="")  # running before claims existed
    requeued = _requeue(MedicalRequest.objects.filter(own, status=Status.RUNNING))
    MedicalRequest.objects.filter(own, status=Status.QUEUED).update(claimed_by="", lease_expires_at=None)
    return requeued


def _requeue(requests):
    ids = list(requests.values_list("pk", flat=True))
    if not ids:
        return 0
    count = MedicalRequest.objects.filter(pk__in=ids, status=Status.RUNNING).update(
        status=Status.QUEUED, claimed_by="", lease_expires_at=None)
    for request_id in ids:
        events.publish_request_changed(request_id)
    worker_link.notify_worker({"event": "queued"})
    return count


def least_urgent_running():
    """The least urgent level any worker is generating (None: nothing runs)."""
    return MedicalRequest.objects.filter(status=Status.RUNNING).aggregate(level=Max("urgency"))["level"]


class SecondWorkerRefused(RuntimeError):
    pass


def refuse_second_worker(worker, *, lease_seconds):
    """SQLite holds no row locks, so two workers would generate the same requests: a second live worker on it
    is refused, naming the one that runs."""
    if connection.vendor != "sqlite":
        return
    other = next((o for o in _other_heartbeats(worker, lease_seconds) if not _process_gone(o.worker_name)), None)
    if other is not None:
        raise SecondWorkerRefused(
            f"another inference worker ({other.worker_name}, last heartbeat {timezone.localtime(other.updated_at):%H:%M:%S}) "
            f"is running on this SQLite database, and the embedded SQLite mode runs one worker: stop it, or set "
            f"DATABASE_URL and REDIS_URL to run several workers on PostgreSQL (docs/cluster.md)")


def _process_gone(worker_name):
    """A default name is host:pid: on this host, a pid that no longer runs is a worker that stopped a moment ago
    (`make run` restarted), not a second one."""
    host, _, pid = worker_name.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _other_heartbeats(worker, lease_seconds):
    """The heartbeats of the other workers heard from within two lease periods."""
    from triage_site.dispatch.models import WorkerHeartbeat

    alive_since = timezone.now() - timedelta(seconds=2 * lease_seconds)
    return WorkerHeartbeat.objects.filter(updated_at__gte=alive_since).exclude(worker_name=worker)


def other_workers_alive(worker, *, lease_seconds):
    return _other_heartbeats(worker, lease_seconds).exists()
