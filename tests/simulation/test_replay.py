"""Replay of recorded traffic: MedicalRequest rows in a window -> trace records -> every policy."""
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.urls import reverse

from triage_site.intake.models import MedicalRequest
from triage_site.simulation.models import SimulationRun
from triage_site.simulation.selectors import EmptyWindow, recorded_trace

START = datetime(2026, 11, 23, 8, 0, tzinfo=dt_timezone.utc)
END = START + timedelta(hours=1)


def make_request(offset_s, **fields):
    fields.setdefault("text", "Chest pain radiating to the left arm")
    request = MedicalRequest.objects.create(**fields)
    MedicalRequest.objects.filter(pk=request.pk).update(created_at=START + timedelta(seconds=offset_s))
    return request


def recorded_window():
    """Rows inside [START, END) of every kind, plus some just outside it."""
    rows = {
        "at_start": make_request(0, status="done", urgency=2, model_urgency=2, prompt_tokens=120,
                                 predicted_output_tokens=200, generated_tokens=180),
        "urgent_done": make_request(10, status="done", urgency=0, model_urgency=2, prompt_tokens=50,
                                    predicted_output_tokens=40, generated_tokens=30),
        "queued": make_request(20.5, status="queued", text="x" * 41, urgency=3, predicted_output_tokens=100),
        "overridden": make_request(30, status="running", urgency=1, model_urgency=4, rule_urgency=1,
                                   prompt_tokens=80, predicted_output_tokens=60, generated_tokens=10),
        "no_prediction": make_request(40, status="queued", urgency=4, model_urgency=4, prompt_tokens=20),
        "unclassified": make_request(50, status="received"),
        "before": make_request(-1, status="done", urgency=0, prompt_tokens=10, generated_tokens=5),
        "at_end": make_request(3600, status="done", urgency=0, prompt_tokens=10, generated_tokens=5),
    }
    return rows


@pytest.mark.django_db
def test_selector_builds_the_trace_of_the_window(settings):
    settings.TRIAGE_MAX_ANSWER_TOKENS = 333
    rows = recorded_window()
    records, notes = recorded_trace(START, END)
    assert [r["request_id"] for r in records] == [rows[k].pk for k in
                                                  ("at_start", "urgent_done", "queued", "overridden", "no_prediction")]
    strip = [{k: v for k, v in r.items() if k != "request_id"} for r in records]
    assert strip == [
        # done: true length is what was generated; the model agreed
        {"arrival_time": 0.0, "urgency": 2, "predicted_urgency": 2, "prompt_tokens": 120, "output_tokens": 180,
         "predicted_output_tokens": 200},
        # the model said 2, rules/dispatcher made it 0: the scheduler would have seen 2
        {"arrival_time": 10.0, "urgency": 0, "predicted_urgency": 2, "prompt_tokens": 50, "output_tokens": 30,
         "predicted_output_tokens": 40},
        # no stored prompt tokens: 41 characters / 4 -> 11; not finished: the prediction stands for the length
        {"arrival_time": 20.5, "urgency": 3, "predicted_urgency": 3, "prompt_tokens": 11, "output_tokens": 100,
         "predicted_output_tokens": 100},
        {"arrival_time": 30.0, "urgency": 1, "predicted_urgency": 4, "prompt_tokens": 80, "output_tokens": 60,
         "predicted_output_tokens": 60},
        # no prediction at all: the configured answer limit
        {"arrival_time": 40.0, "urgency": 4, "predicted_urgency": 4, "prompt_tokens": 20, "output_tokens": 333,
         "predicted_output_tokens": 333},
    ]
    assert notes == {"requests_in_window": 6, "unclassified_skipped": 1, "prompt_tokens_estimated": 1,
                     "output_tokens_from_prediction": 2, "output_tokens_from_limit": 1, "urgency_from_model": 4,
                     "replayed": 5}


@pytest.mark.django_db
def test_selector_refuses_a_window_without_classified_requests():
    with pytest.raises(EmptyWindow, match="No requests were received in this window"):
        recorded_trace(START, END)
    make_request(5, status="received")
    with pytest.raises(EmptyWindow, match="1 request\\(s\\), none of them classified yet"):
        recorded_trace(START, END)


def replay_post(start=START, end=END, **changes):
    return {"start": start.strftime("%Y-%m-%dT%H:%M"), "end": end.strftime("%Y-%m-%dT%H:%M"), "setting": "A100_4B",
            "batch_size": "4", "token_budget": "2048", "classifier_latency": "0.003", "classifier_batch_size": "5",
            "aging_bound": "2", "preemption": "on", **changes}


@pytest.mark.django_db(transaction=True)
def test_replay_of_a_recorded_window_runs_every_policy(dispatcher_client, settings, worker_ran):
    settings.TIME_ZONE = "UTC"
    rows = recorded_window()
    response = dispatcher_client.post(reverse("simulation:replay"), replay_post())
    run = worker_ran(SimulationRun.objects.get())
    assert response.status_code == 302 and response["Location"] == f"/simulation/runs/{run.pk}/"
    assert run.source == "recorded" and run.window_start == START and run.window_end == END
    assert run.status == "done", run.error
    assert len(run.trace) == 5 and run.trace_notes["replayed"] == 5
    result = run.result
    assert result["policies"] == ["fcfs", "sjf", "pjf", "semantic"] and result["seeds"] == [0]
    for policy in result["policies"]:
        per_class = result["per_policy"][policy]["per_class"]
        assert [per_class[c]["waiting"]["count"] for c in ("0", "1", "2", "3", "4", "overall")] == [1, 1, 1, 1, 1, 5]
        sample_ids = {r["source_id"] for r in result["per_policy"][policy]["sample"]}
        assert sample_ids == {rows[k].pk for k in ("at_start", "urgent_done", "queued", "overridden", "no_prediction")}
    page = dispatcher_client.get(response["Location"]).content.decode()
    assert "Recorded traffic" in page and "2026-11-23 08:00" in page


@pytest.mark.django_db
def test_replay_of_an_empty_window_is_a_form_error(dispatcher_client):
    response = dispatcher_client.post(reverse("simulation:replay"), replay_post())
    assert response.status_code == 400
    assert "No requests were received in this window: there is nothing to replay." in response.content.decode()
    response = dispatcher_client.post(reverse("simulation:replay"), replay_post(start=END, end=START))
    assert "The window must end after it starts." in response.content.decode()
    response = dispatcher_client.post(reverse("simulation:replay"), replay_post(end=START + timedelta(days=40)))
    assert "The window may be at most 31 days long." in response.content.decode()
    assert not SimulationRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_replay_that_cannot_fit_fails_with_the_reason(dispatcher_client, worker_ran):
    # A 7B model on a 24 GB A5000 has room for a few thousand tokens of KV: this prompt can never be admitted.
    big = make_request(5, status="done", urgency=0, prompt_tokens=200_000, generated_tokens=10)
    response = dispatcher_client.post(reverse("simulation:replay"), replay_post(setting="A5000_7B"))
    run = worker_ran(SimulationRun.objects.get())
    assert run.status == "failed"
    assert run.error.startswith("ValueError: request 0 needs") and "KV blocks for its prompt" in run.error
    assert run.error.endswith(f"(recorded request #{big.pk})")
    assert "KV blocks for its prompt" in dispatcher_client.get(response["Location"]).content.decode()


@pytest.mark.django_db
def test_replay_of_too_many_requests_is_a_form_error(dispatcher_client, monkeypatch):
    from triage_site.simulation import forms

    monkeypatch.setattr(forms, "MAX_SIMULATED_REQUESTS", 8)
    recorded_window()
    response = dispatcher_client.post(reverse("simulation:replay"), replay_post())
    assert response.status_code == 400
    assert "The window holds 5 classified requests; at most 2 can be replayed at once." in response.content.decode()
