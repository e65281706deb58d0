"""Chart data over the last hour and the worker's tokens/s samples."""
import pytest
from django.utils import timezone

from inference_worker.store import RequestStore
from triage_site.dispatch import selectors
from triage_site.dispatch.models import WorkerHeartbeat, WorkerSample
from triage_site.intake.models import MedicalRequest, Status

pytestmark = pytest.mark.django_db


def at(seconds_ago, now):
    return now - timezone.timedelta(seconds=seconds_ago)


def make(now, urgency, created, queued, first=None, finished=None, status=Status.DONE):
    request = MedicalRequest.objects.create(text="x", urgency=urgency, status=status)
    MedicalRequest.objects.filter(pk=request.pk).update(
        created_at=at(created, now), queued_at=None if queued is None else at(queued, now),
        first_token_at=None if first is None else at(first, now),
        finished_at=None if finished is None else at(finished, now))
    return request


def test_waiting_ttft_and_queue_length_per_class():
    now = timezone.now().replace(second=30, microsecond=0)
    make(now, 0, created=100, queued=99, first=95, finished=90)           # waited 4 s, ttft 5 s
    make(now, 0, created=100, queued=98, first=92, finished=80)           # waited 6 s, ttft 8 s
    make(now, 3, created=50, queued=49, status=Status.QUEUED)              # still waiting
    make(now, 2, created=7200, queued=7199, first=7000, finished=6900)    # outside the hour
    charts = selectors.charts_snapshot(now)
    assert sum(charts["waiting"]["0"]["n"]) == 2
    weighted = lambda s: sum(y * n for y, n in zip(s["y"], s["n"]))  # noqa: E731
    assert weighted(charts["waiting"]["0"]) == pytest.approx(4 + 6)
    assert weighted(charts["ttft"]["0"]) == pytest.approx(5 + 8)
    assert charts["waiting"]["2"]["x"] == []
    # now: one request of class 3 is waiting, none of class 0
    assert charts["queue"]["by_class"]["3"][-1] == 1
    assert charts["queue"]["by_class"]["0"][-1] == 0
    samples = charts["queue"]["x"]
    assert len(samples) == selectors.CHART_WINDOW_SECONDS // selectors.QUEUE_SAMPLE_SECONDS + 1


def test_heartbeat_records_samples_and_prunes_old_ones():
    store = RequestStore(worker_name="test-worker")
    WorkerSample.objects.create(worker_name="old", recorded_at=timezone.now() - timezone.timedelta(hours=2))
    store.heartbeat([3, 1, 2], {"tokens_per_second": 42.0, "active_requests": 1, "running": 1})
    assert WorkerHeartbeat.objects.get().queue_order == [3, 1, 2]
    sample = WorkerSample.objects.get()
    assert (sample.tokens_per_second, sample.active_requests, sample.queued_requests) == (42.0, 1, 2)
    charts = selectors.charts_snapshot()
    assert charts["tokens"]["y"] == [42.0]


def test_attainment_counts_requests_still_waiting_past_their_target_as_misses(settings):
    settings.TRIAGE_FIRST_TOKEN_TARGETS_S = (2, 10, 60, 300, 900)
    now = timezone.now()
    make(now, 0, created=100, queued=99, first=99, finished=90)            # answered within 2 s: a hit
    make(now, 0, created=30, queued=29, status=Status.QUEUED)              # 30 s, no token yet: a miss already
    make(now, 0, created=1, queued=1, status=Status.QUEUED)                # 1 s: still within target, not counted
    make(now, 2, created=120, queued=119, status=Status.RUNNING)           # 120 s past a 60 s target: a miss
    make(now, 3, created=120, queued=119, status=Status.QUEUED)            # within its 300 s: not counted
    make(now, 1, created=7200, queued=7199, status=Status.QUEUED)          # outside the hour
    attainment = selectors.charts_snapshot(now)["attainment"]
    assert (attainment[0]["within"], attainment[0]["total"]) == (1, 2)
    assert (attainment[2]["within"], attainment[2]["total"]) == (0, 1)
    assert attainment[1]["total"] == attainment[3]["total"] == 0
