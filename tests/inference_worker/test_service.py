"""The worker service against the real database and a real (tiny, random) model."""
import threading

import pytest
from django.db import OperationalError

from benchmarks.launch import wait_until
from inference_worker.build import build_service
from triage_site.dispatch.models import WorkerHeartbeat
from triage_site.intake import services
from triage_site.intake.models import MedicalRequest, Status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def tiny_service_factory():
    def factory(max_answer_tokens=12):
        return build_service(model_name="tiny", device="cpu", policy="semantic", max_answer_tokens=max_answer_tokens)
    return factory


def queue(text, urgency):
    request = MedicalRequest.objects.create(text=text)
    services.record_classification(request.pk, urgency=urgency, predicted_output_tokens=50)
    return request


def run_until(service, condition, max_iterations=500):
    for _ in range(max_iterations):
        service.run_once()
        if condition():
            return
    raise AssertionError("condition not reached")


def test_queued_requests_are_answered_and_stored(tiny_service_factory):
    service = tiny_service_factory()
    requests = [queue("refill my inhaler", 4), queue("baby not breathing", 0)]
    run_until(service, lambda: MedicalRequest.objects.filter(status=Status.DONE).count() == 2)
    for request in requests:
        request.refresh_from_db()
        assert request.answer
        assert 0 < request.generated_tokens <= 12
        assert request.first_token_at <= request.finished_at
    service.heartbeat()
    heartbeat = WorkerHeartbeat.objects.get()
    assert heartbeat.stats["completed"] == 2


def test_urgent_request_gets_its_first_token_first(tiny_service_factory):
    service = tiny_service_factory(max_answer_tokens=40)
    low = [queue(f"prescription question {i}", 4) for i in range(3)]
    urgent = queue("cardiac arrest", 0)
    run_until(service, lambda: MedicalRequest.objects.filter(status=Status.DONE).count() == 4, 2000)
    urgent.refresh_from_db()
    assert all(urgent.first_token_at <= MedicalRequest.objects.get(pk=r.pk).first_token_at for r in low)


def test_override_reaches_the_running_worker(tiny_service_factory):
    service = tiny_service_factory(max_answer_tokens=30)
    request = queue("twisted ankle", 4)
    service.run_once()
    assert service.active[request.pk].urgency == 4
    MedicalRequest.objects.filter(pk=request.pk).update(urgency=0)
    service._handle_event({"event": "urgency_changed", "request_id": request.pk})
    service.run_once()
    assert service.active[request.pk].urgency == 0
    assert service.engine.sched.get(request.pk).urgency == 0


def interrupted_request():
    request = queue("fell off ladder", 2)
    services.mark_running(request.pk, prompt_tokens=5)
    services.save_progress(request.pk, answer="partial", generated_tokens=2)
    return request


def run_in_thread_until_done(service, request, seconds=15):
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,))
    thread.start()
    def done():
        request.refresh_from_db()
        return request.status == Status.DONE

    try:
        wait_until(done, seconds, interval=0.05, message=f"request {request.pk} not done")
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


def test_restart_resumes_interrupted_work_after_its_saved_answer(tiny_service_factory):
    request = interrupted_request()
    first_token_at = MedicalRequest.objects.get(pk=request.pk).first_token_at
    run_in_thread_until_done(tiny_service_factory(), request)
    assert request.status == Status.DONE
    # the dispatcher's screen does not restart from nothing: the saved text stays and the answer goes on after it
    assert request.answer.startswith("partial") and len(request.answer) > len("partial")
    assert request.first_token_at == first_token_at


def test_a_resumed_answer_streams_on_at_the_end_of_its_saved_text(tiny_service_factory, monkeypatch):
    """A page placed each delta by an offset the publishing process counted from 0, so after a restart the new
    text landed over the saved text it continues; the worker now counts from where the resumed answer ends."""
    from triage_site.live import events

    request = interrupted_request()
    deltas = []
    monkeypatch.setattr(events, "publish_answer_delta", lambda request_id, **delta: deltas.append(delta))
    run_in_thread_until_done(tiny_service_factory(), request)
    assert deltas and deltas[0]["offset"] == len("partial")
    offsets = [delta["offset"] for delta in deltas]
    assert offsets == [len("partial") + sum(len(delta["text"]) for delta in deltas[:i]) for i in range(len(deltas))]


def test_worker_that_starts_during_a_database_outage_recovers_once_it_answers(tiny_service_factory, monkeypatch):
    request = interrupted_request()
    service = tiny_service_factory()
    recover = service.store.recover_interrupted
    attempts = []

    def recover_after_one_outage():
        attempts.append(1)
        if len(attempts) == 1:
            raise OperationalError("the database system is starting up")
        return recover()

    monkeypatch.setattr(service.store, "recover_interrupted", recover_after_one_outage)
    run_in_thread_until_done(service, request)
    assert len(attempts) == 2
    assert request.status == Status.DONE
    assert request.answer.startswith("partial") and len(request.answer) > len("partial")


def test_worker_resends_requests_stuck_before_classification(tiny_service_factory, monkeypatch):
    from triage_site.intake import tasks

    sent = []
    monkeypatch.setattr(tasks.classify_request, "delay", lambda pk: sent.append(pk))
    stuck = MedicalRequest.objects.create(text="fainted")
    MedicalRequest.objects.filter(pk=stuck.pk).update(created_at=stuck.created_at.replace(year=2020))
    service = tiny_service_factory()
    service.resend_interval = 0
    service.run_once()
    assert sent == [stuck.pk]


def test_the_worker_warms_the_card_library_most_urgent_first_while_idle(tiny_service_factory):
    from triage_site.guidance import selection

    service = tiny_service_factory()
    expected = [card.id for card in selection.cards_most_urgent_first()]
    assert service._warmer.waiting() == expected
    service.run_once()
    assert service._warmer.waiting() == expected[1:]
    assert service.engine.stats()["kv_cached_blocks"] > 0
