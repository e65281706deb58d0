"""Load on the real stack: 50 submissions a second for a minute through the intake form.

Open-loop (a slow server gets no breathing space), from the same two cores as the server, Celery
and the inference worker. Asserts what must hold: every POST answered with a stored request, every
stored request classified and answered once; reports the intake latency, which is a figure for
docs/reliability.md, not a pass mark.
"""
import asyncio
import os
import time

import pytest

from benchmarks import traffic
from benchmarks.launch import wait_until
from tests.support.report import report
from tests.support.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1000)]

RATE = float(os.environ.get("TRIAGE_LOAD_RATE", "50"))
SECONDS = float(os.environ.get("TRIAGE_LOAD_SECONDS", "60"))
# A bound on the wait, not a pass mark: the drain took 25-125 s on the development machine and more than 420 s
# once on a CI machine about 2.5 times slower, where classification (one torch thread, niced) is the bottleneck.
DRAIN_LIMIT_S = 600


@pytest.fixture
def stack(tmp_path):
    stack = Stack(tmp_path, extra_env={"TRIAGE_MAX_ANSWER_TOKENS": "16"})
    yield stack
    stack.close()


def test_fifty_submissions_a_second_for_a_minute(stack):
    stack.start_all()
    password = stack.password_file.read_text().strip()
    asyncio.run(traffic.run(stack.base_url, "e2e", password, rate=5, seconds=1))  # warm the web server
    wait_until(lambda: stack.statuses().get("done", 0) == 5, 180, message="warm-up not served")

    load = asyncio.run(traffic.run(stack.base_url, "e2e", password, rate=RATE, seconds=SECONDS, seed=1))
    summary = load.summary()
    assert summary["errors"] == 0, summary["error_examples"]
    assert summary["submitted"] == int(RATE * SECONDS)
    accepted = load.accepted_ids
    assert len(set(accepted)) == len(accepted) == summary["submitted"]
    stored = {row[0] for row in stack.query("SELECT id FROM intake_medicalrequest WHERE id = ANY(%s)", accepted)}
    assert stored == set(accepted), f"{len(set(accepted) - stored)} accepted requests are not in the database"

    drained_from = time.monotonic()
    total = len(accepted) + 5
    wait_until(lambda: stack.statuses().get("done", 0) == total, DRAIN_LIMIT_S, interval=2,
               message="not every accepted request was answered")
    drain_s = time.monotonic() - drained_from
    rows = stack.query("SELECT status, count(*), count(DISTINCT id), min(generated_tokens) "
                       "FROM intake_medicalrequest GROUP BY status")
    assert [(status, count) for status, count, _, _ in rows] == [("done", total)]
    assert rows[0][2] == total and rows[0][3] > 0
    waits = stack.query("SELECT urgency, percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM "
                        "finished_at - created_at)) FROM intake_medicalrequest WHERE id = ANY(%s) "
                        "GROUP BY urgency ORDER BY urgency", accepted)
    report("load", {**summary, "stored": len(stored), "answered": len(accepted), "lost": 0,
                    "answered_all_within_s_of_last_submission": round(drain_s, 1),
                    "median_seconds_to_answer_by_urgency": {int(u): round(s, 1) for u, s in waits}})
