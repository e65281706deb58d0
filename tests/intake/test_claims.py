"""Claims with leases and fencing tokens (docs/cluster.md): order, exclusivity, renewal, expiry and recovery.
Run embedded on SQLite and again on PostgreSQL, where SKIP LOCKED is real."""
import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.db.models import F
from django.utils import timezone

from triage_site.dispatch.models import WorkerHeartbeat
from triage_site.intake import claims, services
from triage_site.intake.models import MedicalRequest, Status

pytestmark = pytest.mark.django_db(transaction=True)
LEASE = 10


def queued(urgency=2, predicted=100, seconds_ago=0, **fields):
    request = MedicalRequest.objects.create(text="x", status=Status.QUEUED, urgency=urgency,
                                            predicted_output_tokens=predicted, **fields)
    if seconds_ago:
        MedicalRequest.objects.filter(pk=request.pk).update(created_at=timezone.now() - timedelta(seconds=seconds_ago))
    return request.pk


def ids(rows):
    return [row[0] for row in rows]


def token(rows, pk):
    return {row[0]: row[-1] for row in rows}[pk]


def expire(*pks):
    MedicalRequest.objects.filter(pk__in=pks).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_claims_follow_urgency_then_predicted_work_then_arrival(settings):
    settings.TRIAGE_SCHEDULER_AGING = "off"
    late_short = queued(urgency=2, predicted=50)
    urgent = queued(urgency=0, predicted=300)
    long = queued(urgency=2, predicted=300)
    early_short = queued(urgency=2, predicted=50, seconds_ago=5)
    assert ids(claims.claim("a", lease_seconds=LEASE)) == [urgent, early_short, late_short, long]


def test_requests_waiting_past_their_share_of_the_target_are_claimed_as_class_0_behind_the_native_ones(settings):
    settings.TRIAGE_SCHEDULER_AGING = "deadline"
    settings.TRIAGE_FIRST_TOKEN_TARGETS_S = (2, 10, 60, 300, 900)
    fresh_urgent = queued(urgency=1)
    native = queued(urgency=0, predicted=400)
    overdue = queued(urgency=3, predicted=10, seconds_ago=240)  # 80% of 300 s, past the 75% share
    waiting = queued(urgency=3, predicted=10, seconds_ago=60)
    assert ids(claims.claim("a", lease_seconds=LEASE)) == [native, overdue, fresh_urgent, waiting]


def test_a_claimed_request_is_not_claimed_again_until_its_lease_expires_and_the_token_grows():
    pk = queued()
    first = claims.claim("a", lease_seconds=LEASE)
    assert claims.claim("b", lease_seconds=LEASE) == []
    expire(pk)
    second = claims.claim("b", lease_seconds=LEASE)
    assert ids(second) == [pk] and token(second, pk) == token(first, pk) + 1
    assert MedicalRequest.objects.get(pk=pk).claimed_by == "b"


def test_limit_exclusions_and_more_urgent_than():
    low, mid, top = queued(urgency=4), queued(urgency=2), queued(urgency=0)
    assert ids(claims.claim("a", lease_seconds=LEASE, limit=1)) == [top]
    assert claims.claim("b", lease_seconds=LEASE, more_urgent_than=2) == []  # only level 2 and 4 are left
    assert ids(claims.claim("b", lease_seconds=LEASE, exclude_ids=[mid])) == [low]


def test_a_worker_that_lost_its_lease_writes_nothing_and_the_new_holder_does():
    pk = queued()
    old = ("a", token(claims.claim("a", lease_seconds=LEASE), pk))
    assert services.mark_running(pk, prompt_tokens=9, claim=old)
    assert services.save_progress(pk, answer="Start CPR", generated_tokens=2, claim=old)
    expire(pk)
    assert claims.requeue_expired() == 1
    new = ("b", token(claims.claim("b", lease_seconds=LEASE), pk))
    assert services.mark_running(pk, prompt_tokens=9, claim=new)
    # the paused worker wakes up and tries every kind of write: all refused
    assert not services.save_progress(pk, answer="stale", generated_tokens=50, claim=old)
    assert not services.mark_done(pk, answer="stale answer", generated_tokens=50, claim=old)
    assert not services.mark_withdrawn(pk, answer="stale", generated_tokens=50, reason="x", claim=old)
    assert not services.mark_failed(pk, error="stale", claim=old)
    assert services.mark_done(pk, answer="Start CPR. Push hard.", generated_tokens=6, claim=new)
    request = MedicalRequest.objects.get(pk=pk)
    assert (request.status, request.answer) == (Status.DONE, "Start CPR. Push hard.")


def test_a_worker_whose_claim_was_superseded_drops_the_request_and_writes_nothing():
    """The token moves on when another worker claims the request or an override restarts its answer: the holder
    sees it at its next reconciliation, and no write of its own, fenced or late, lands."""
    from inference_worker.store import RequestStore

    pk = queued()
    store = RequestStore("a", lease_seconds=LEASE)
    assert [request.request_id for request in store.queued()] == [pk]
    assert store.mark_running(pk, prompt_tokens=9)
    assert store.open_urgencies([pk]) == {pk: 2}
    MedicalRequest.objects.filter(pk=pk).update(status=Status.QUEUED, claimed_by="", claim_token=F("claim_token") + 1)
    assert store.open_urgencies([pk]) == {}
    assert not store.save_progress(pk, "stale", 5)
    assert not store.mark_done(pk, "stale answer", 9)
    request = MedicalRequest.objects.get(pk=pk)
    assert (request.status, request.answer) == (Status.QUEUED, "")


def test_the_log_tells_a_lease_another_worker_took_from_an_answer_an_override_restarted(caplog):
    """Operators (and the cluster tests) read the worker log: whichever of reconciliation or renewal sees a lost
    claim first, it is reported as a lost lease, and a takeover apart from a request back in the queue."""
    from inference_worker.store import RequestStore

    taken, restarted = queued(), queued()
    store = RequestStore("a", lease_seconds=LEASE)
    assert sorted(request.request_id for request in store.queued()) == sorted([taken, restarted])
    expire(taken)
    assert ids(claims.claim("b", lease_seconds=LEASE)) == [taken]
    MedicalRequest.objects.filter(pk=restarted).update(claimed_by="", claim_token=F("claim_token") + 1)
    with caplog.at_level("INFO", logger="inference_worker.store"):
        assert store.open_urgencies([taken, restarted]) == {}
    lines = {record.getMessage() for record in caplog.records}
    assert f"request {taken}: this worker's lease on it was lost; another worker serves it" in lines
    assert any(line.startswith(f"request {restarted}: this worker's lease on it was lost; claim ")
               and "back in the queue (an override restarted its answer" in line for line in lines)


def test_the_worker_grounds_the_answer_in_the_card_words_the_request_was_shown():
    from inference_worker.store import RequestStore
    from triage_site.guidance import selection

    choking = selection.CARDS["choking"]
    queued(cards=[choking.reference()], card_texts=[{**choking.text(), "steps": ["The stored step."]}])
    [request] = RequestStore("a", lease_seconds=LEASE).queued()
    assert request.cards[0]["id"] == "choking" and request.cards[0]["steps"] == ["The stored step."]


def test_an_expired_running_request_returns_to_the_queue_with_its_partial_answer_and_first_token_time():
    pk = queued()
    claim = ("a", token(claims.claim("a", lease_seconds=LEASE), pk))
    services.mark_running(pk, prompt_tokens=9, claim=claim)
    services.save_progress(pk, answer="Lay him flat", generated_tokens=3, claim=claim)
    first = MedicalRequest.objects.get(pk=pk).first_token_at
    assert claims.requeue_expired() == 0  # the lease still runs
    expire(pk)
    assert claims.requeue_expired() == 1
    request = MedicalRequest.objects.get(pk=pk)
    assert (request.status, request.claimed_by, request.answer, request.first_token_at) == \
        (Status.QUEUED, "", "Lay him flat", first)
    resumed = claims.claim("b", lease_seconds=LEASE)
    assert resumed[0][claims.CLAIMED_FIELDS.index("answer")] == "Lay him flat"
    services.mark_running(pk, prompt_tokens=12, claim=("b", token(resumed, pk)))
    assert MedicalRequest.objects.get(pk=pk).first_token_at == first


def test_renewal_extends_the_leases_still_held_and_reports_the_lost_ones():
    kept, lost = queued(), queued()
    rows = claims.claim("a", lease_seconds=1)
    expire(lost)
    claims.claim("b", lease_seconds=LEASE)  # takes the expired one
    held = claims.renew("a", [kept, lost], lease_seconds=LEASE)
    assert held == {kept: token(rows, kept)}
    assert MedicalRequest.objects.get(pk=kept).lease_expires_at > timezone.now() + timedelta(seconds=LEASE - 2)


def test_release_gives_back_unstarted_claims():
    pk = queued()
    claims.claim("a", lease_seconds=LEASE)
    assert claims.release("a", [pk]) == 1
    assert ids(claims.claim("b", lease_seconds=LEASE)) == [pk]


def test_start_up_recovery_takes_back_only_the_starting_workers_own_claims():
    mine, theirs = queued(), queued()
    rows = claims.claim("a", lease_seconds=LEASE, limit=1)
    assert ids(rows) == [mine]
    other = claims.claim("b", lease_seconds=LEASE)
    services.mark_running(mine, prompt_tokens=5, claim=("a", token(rows, mine)))
    services.mark_running(theirs, prompt_tokens=5, claim=("b", token(other, theirs)))
    assert claims.recover_at_start("a") == (2 if connection.vendor == "sqlite" else 1)
    statuses = dict(MedicalRequest.objects.values_list("pk", "status"))
    assert statuses[mine] == Status.QUEUED
    # on PostgreSQL another live worker's request is never touched; SQLite only ever runs one worker
    assert statuses[theirs] == (Status.QUEUED if connection.vendor == "sqlite" else Status.RUNNING)


def test_a_second_worker_on_sqlite_is_refused_with_a_clear_message():
    WorkerHeartbeat.objects.create(worker_name="web:123", queue_order=[], stats={})
    if connection.vendor != "sqlite":
        claims.refuse_second_worker("other", lease_seconds=LEASE)  # PostgreSQL: any number of workers
        return
    with pytest.raises(claims.SecondWorkerRefused, match="web:123.*SQLite mode runs one worker.*DATABASE_URL"):
        claims.refuse_second_worker("other", lease_seconds=LEASE)
    claims.refuse_second_worker("web:123", lease_seconds=LEASE)  # the same worker restarting is fine
    WorkerHeartbeat.objects.filter(worker_name="web:123").update(updated_at=timezone.now() - timedelta(minutes=5))
    claims.refuse_second_worker("other", lease_seconds=LEASE)  # a dead one does not count


def test_workers_claiming_at_the_same_moment_never_share_a_request():
    if connection.vendor == "sqlite":
        pytest.skip("SQLite runs one worker; SKIP LOCKED is a PostgreSQL feature")
    pks = {queued(urgency=n % 5) for n in range(60)}
    start, results = threading.Barrier(3), {}

    def worker(name):
        try:
            start.wait()
            got = []
            while rows := claims.claim(name, lease_seconds=LEASE, limit=7, exclude_ids=got):
                got += ids(rows)
            results[name] = got
        except Exception as error:  # surfaced by the assertion below
            results[name] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not [error for error in results.values() if isinstance(error, Exception)], results
    claimed = [pk for got in results.values() for pk in got]
    assert sorted(claimed) == sorted(pks)  # every request claimed, none twice
    assert all(results.values())


def test_a_worker_of_this_host_whose_process_is_gone_does_not_count_as_a_second_worker():
    import socket
    import subprocess
    import sys

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    WorkerHeartbeat.objects.create(worker_name=f"{socket.gethostname()}:{finished.stdout.strip()}", queue_order=[],
                                   stats={})
    claims.refuse_second_worker("restarted", lease_seconds=LEASE)  # `make run` restarted: not refused


def test_a_nul_character_from_the_model_is_stored_as_a_replacement_character():
    """PostgreSQL refuses NUL in text: a worker step that failed on it stalled every request it held."""
    pk = queued()
    claim = ("a", token(claims.claim("a", lease_seconds=LEASE), pk))
    assert services.mark_running(pk, prompt_tokens=9, claim=claim)
    assert services.save_progress(pk, answer="Lay him\x00 flat", generated_tokens=3, claim=claim)
    assert MedicalRequest.objects.get(pk=pk).answer == "Lay him\ufffd flat"
    assert services.mark_withdrawn(pk, answer="Lay\x00", generated_tokens=4, reason="repeated text", claim=claim)
    assert MedicalRequest.objects.get(pk=pk).answer == "Lay\ufffd"
