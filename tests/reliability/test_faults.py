"""Faults on the real stack: nothing accepted is lost, nothing is done twice."""
import signal
import time

import pytest

from benchmarks.launch import wait_until
from tests.support.report import report
from tests.support.stack import RedisServer, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]


@pytest.fixture
def make_stack(tmp_path):
    stacks = []

    def factory(**kwargs):
        stacks.append(Stack(tmp_path, **kwargs))
        return stacks[-1]

    yield factory
    for stack in stacks:
        stack.close()


def test_inference_worker_killed_mid_generation(make_stack):
    stack = make_stack(extra_env={"TRIAGE_MAX_ANSWER_TOKENS": "600", "TRIAGE_RESEND_INTERVAL_S": "2"})
    stack.start_all()
    client = stack.sign_in()
    ids = {stack.submit(client, f"Fall from a ladder, leg pain, caller {n}") for n in range(8)}
    wait_until(lambda: stack.statuses().get("running", 0) > 0, 120, message="no request started running")
    stack.kill("worker", signal.SIGKILL)
    interrupted = stack.statuses()
    assert interrupted.get("done", 0) < len(ids), "everything finished before the kill; the test proved nothing"

    stack.start("worker")
    wait_until(lambda: stack.statuses().get("done", 0) == len(ids), 240, message="not every request finished")
    rows = stack.query("SELECT id, status, answer, generated_tokens FROM intake_medicalrequest")
    assert {row[0] for row in rows} == ids
    assert all(status == "done" and answer and 0 < tokens <= 600 for _, status, answer, tokens in rows)
    report("worker-sigkill", {"requests": len(ids), "statuses_at_kill": interrupted, "finished_after_restart": len(rows),
                              "lost": 0, "duplicated": len(rows) - len(ids)})


def test_redis_outage_keeps_intake_open_and_catches_up(make_stack, tmp_path):
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        stack = make_stack(redis_url=redis.url, extra_env={"TRIAGE_RESEND_INTERVAL_S": "3"})
        stack.start_all()
        client = stack.sign_in()
        before = {stack.submit(client, f"Wheezing, inhaler not helping, call {n}") for n in range(3)}
        wait_until(lambda: stack.statuses().get("done", 0) == len(before), 120, message="warm-up not served")

        redis.stop()
        started = time.monotonic()
        during, latencies = set(), []
        for n in range(5):
            began = time.monotonic()
            during.add(stack.submit(client, f"Child with high fever during the outage, call {n}"))
            latencies.append(time.monotonic() - began)
        stored = stack.query("SELECT count(*) FROM intake_medicalrequest WHERE id = ANY(%s)", list(during))[0][0]
        assert stored == len(during)
        time.sleep(max(0.0, 5 - (time.monotonic() - started)))
        outage = time.monotonic() - started

        redis.start()
        total = len(before) + len(during)
        wait_until(lambda: stack.statuses().get("done", 0) == total, 180, message="backlog not served after Redis returned")
        report("redis-outage", {"outage_seconds": round(outage, 1), "accepted_during_outage": len(during),
                                "max_intake_seconds_during_outage": round(max(latencies), 2),
                                "served_after_recovery": total, "lost": 0})
    finally:
        redis.stop()


def test_celery_worker_killed_during_classification(make_stack):
    # Redelivery, not the worker's re-send loop, must recover the task: re-sending is pushed out of reach.
    # The worker loads the models on its first task, not at start: that task is then in progress for seconds.
    stack = make_stack(extra_env={"TRIAGE_CELERY_VISIBILITY_TIMEOUT": "5", "TRIAGE_RESEND_INTERVAL_S": "3600",
                                  "TRIAGE_CELERY_PRELOAD_MODELS": "0"})
    stack.start("web")
    stack.start("celery")
    client = stack.sign_in()
    request_id = stack.submit(client, "Sudden weakness in the left arm and slurred speech")

    def status():
        return stack.query("SELECT status FROM intake_medicalrequest WHERE id = %s", request_id)[0][0]

    # The first task of a fresh worker loads the encoder: seconds in which the task is in progress.
    wait_until(lambda: status() == "classifying", 60, interval=0.02, message="task never started")
    stack.kill("celery", signal.SIGKILL)
    assert status() == "classifying"

    stack.start("celery")
    wait_until(lambda: status() == "queued", 120, message="the task was not redelivered")
    classified_at, urgency = stack.query(
        "SELECT classified_at, urgency FROM intake_medicalrequest WHERE id = %s", request_id)[0]
    time.sleep(3)
    assert stack.query("SELECT classified_at FROM intake_medicalrequest WHERE id = %s", request_id)[0][0] == classified_at
    assert urgency in (0, 1)
    report("celery-sigkill", {"redelivered_and_classified": 1, "classified_times": 1, "urgency": urgency})
