"""The simulation pages end to end through the views, with Celery eager (the run happens inside the POST)."""
import csv
import io
import json

import pytest
from django.urls import reverse

from tests.support.html import external_assets
from triage_site.simulation.models import SimulationRun

SMALL_RUN = {"policies": ["fcfs", "sjf", "pjf", "semantic"], "setting": "A100_4B", "user_request_gap": "1",
             "max_concurrent_user_requests": "3", "gap_num": "4", "batch_size": "4", "token_budget": "2048",
             "priority_error_rate": "0.2", "priority_error_distance": "1", "length_error_rate": "0.2",
             "length_error_distance": "0.5", "classifier_latency": "0.003", "classifier_batch_size": "5",
             "aging_bound": "2", "preemption": "on", "seeds": "0,1"}


@pytest.mark.django_db
def test_index_shows_both_forms(dispatcher_client):
    response = dispatcher_client.get(reverse("simulation:index"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'action="/simulation/"' in body and 'action="/simulation/replay/"' in body
    assert "Request gap (s)" in body and "Window start" in body


@pytest.mark.django_db
def test_bad_parameters_rerender_the_form_with_errors(dispatcher_client):
    response = dispatcher_client.post(reverse("simulation:index"), {**SMALL_RUN, "user_request_gap": "0",
                                                                    "seeds": "0-50"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Request gap must be greater than 0 seconds" in body
    assert "at most 20" in body
    assert not SimulationRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_synthetic_run_end_to_end(dispatcher_client, dispatcher, worker_ran):
    response = dispatcher_client.post(reverse("simulation:index"), SMALL_RUN)
    run = worker_ran(SimulationRun.objects.get())
    assert response.status_code == 302
    assert response["Location"] == reverse("simulation:detail", args=[run.pk]) == f"/simulation/runs/{run.pk}/"
    assert run.status == "done", run.error
    assert run.progress == 1.0 and run.finished_at is not None and run.created_by == dispatcher
    assert run.seeds == [0, 1]
    result = run.result
    assert result["policies"] == ["fcfs", "sjf", "pjf", "semantic"]
    for policy in result["policies"]:
        data = result["per_policy"][policy]
        assert data["per_class"]["overall"]["waiting"]["count"] == data["num_requests"] > 0
        assert len(data["sample"]) <= 60 and data["timeline"]
        assert result["ratios"]["fcfs"]["overall"]["waiting"]["mean"] == pytest.approx(1.0)
    # every policy saw the same workloads
    counts = {result["per_policy"][p]["num_requests"] for p in result["policies"]}
    assert len(counts) == 1

    status = dispatcher_client.get(reverse("simulation:status", args=[run.pk])).json()
    assert status["status"] == "done" and status["finished"] and status["progress"] == 1.0

    page = dispatcher_client.get(response["Location"])
    body = page.content.decode()
    assert page.status_code == 200
    assert 'id="run-data"' in body and "plotly/plotly.min.js" in body and "chart-mean-waiting" in body
    assert external_assets(body) == []

    listing = dispatcher_client.get(reverse("simulation:index")).content.decode()
    assert f'href="/simulation/runs/{run.pk}/"' in listing

    download = dispatcher_client.get(reverse("simulation:results_csv", args=[run.pk]))
    assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
    assert f"simulation-{run.pk}.csv" in download["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(download.content.decode())))
    assert rows[0] == ["policy", "class", "metric", "count", "mean", "p50", "p95", "p99", "max",
                       "mean_ratio_to_fcfs", "p99_ratio_to_fcfs", "first_token_within_target"]
    assert len(rows) == 1 + 4 * 6 * 3
    by_key = {(r[0], r[1], r[2]): r for r in rows[1:]}
    semantic_overall = by_key[("semantic", "overall", "waiting")]
    expected = result["per_policy"]["semantic"]["per_class"]["overall"]["waiting"]
    assert int(semantic_overall[3]) == expected["count"]
    assert float(semantic_overall[4]) == pytest.approx(expected["mean"], rel=1e-5)
    assert by_key[("fcfs", "0", "waiting")][9] in ("1", "")  # FCFS against itself (empty when its mean is 0)
    share = result["per_policy"]["semantic"]["per_class"]["0"]["attainment"]["share"]
    assert by_key[("semantic", "0", "waiting")][11] == ("" if share is None else f"{share:.6g}")
    assert by_key[("semantic", "0", "e2e")][11] == ""  # attainment is about the first token

    as_json = dispatcher_client.get(reverse("simulation:results_json", args=[run.pk]))
    body = json.loads(as_json.content)
    assert body["id"] == run.pk and body["result"]["policies"] == result["policies"]
    assert body["params"]["user_request_gap"] == 1.0


@pytest.mark.django_db(transaction=True)
def test_finished_run_is_not_run_again(dispatcher_client, worker_ran):
    from triage_site.simulation.tasks import run_simulation_run

    dispatcher_client.post(reverse("simulation:index"), {**SMALL_RUN, "policies": ["fcfs"]})
    run = worker_ran(SimulationRun.objects.get())
    SimulationRun.objects.filter(pk=run.pk).update(result={"marker": True})
    run_simulation_run(run.pk)
    run.refresh_from_db()
    assert run.status == "done" and run.result == {"marker": True}


@pytest.mark.django_db(transaction=True)
def test_failed_run_shows_why(dispatcher_client, monkeypatch, worker_ran):
    from triage_site.simulation import comparison

    def explode(*args, **kwargs):
        raise RuntimeError("simulation stalled: requests queued but none can be scheduled")

    monkeypatch.setattr(comparison, "run_simulation", explode)
    response = dispatcher_client.post(reverse("simulation:index"), SMALL_RUN)
    run = worker_ran(SimulationRun.objects.get())
    assert run.status == "failed"
    assert run.error == "RuntimeError: simulation stalled: requests queued but none can be scheduled"
    page = dispatcher_client.get(response["Location"]).content.decode()
    assert "The run failed" in page and "simulation stalled: requests queued but none can be scheduled" in page
    assert dispatcher_client.get(reverse("simulation:status", args=[run.pk])).json()["error"] == run.error
    assert dispatcher_client.get(reverse("simulation:results_csv", args=[run.pk])).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_result_the_database_refuses_fails_the_run_instead_of_leaving_it_running(dispatcher_client, monkeypatch,
                                                                                    worker_ran):
    from triage_site.simulation import comparison

    monkeypatch.setattr(comparison, "execute", lambda *args, **kwargs: {"mean": float("inf")})
    dispatcher_client.post(reverse("simulation:index"), SMALL_RUN)
    run = worker_ran(SimulationRun.objects.get())
    assert run.status == "failed" and run.error, run.status


@pytest.mark.django_db
def test_pending_run_page_polls_its_status(dispatcher_client, dispatcher):
    run = SimulationRun.objects.create(params={"setting": "A100_4B"}, policies=["fcfs"], seeds=[0],
                                       created_by=dispatcher)
    body = dispatcher_client.get(reverse("simulation:detail", args=[run.pk])).content.decode()
    assert 'id="progress-bar"' in body and f"/simulation/runs/{run.pk}/status.json" in body
    assert dispatcher_client.get(reverse("simulation:status", args=[run.pk])).json() == {
        "id": run.pk, "status": "pending", "progress": 0.0, "error": "", "finished": False,
        "url": f"/simulation/runs/{run.pk}/"}


@pytest.mark.django_db
@pytest.mark.parametrize("name, args", [("simulation:index", []), ("simulation:replay", []),
                                        ("simulation:detail", [1]), ("simulation:status", [1]),
                                        ("simulation:results_csv", [1]), ("simulation:results_json", [1])])
def test_permissions(client, django_user_model, name, args):
    url = reverse(name, args=args)
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")
    other = django_user_model.objects.create_user("caller", password="x-long-password-1")
    client.force_login(other)
    assert client.get(url).status_code == 403
    assert client.post(url, SMALL_RUN).status_code in (403, 405)
    assert not SimulationRun.objects.exists()


@pytest.mark.django_db
def test_a_run_waits_while_another_runs_so_simulations_never_hold_both_celery_processes(dispatcher):
    """On the full stack simulations share the Celery workers with the classification of new calls."""
    from datetime import timedelta

    from django.utils import timezone

    from triage_site.simulation import tasks

    def new_run(**fields):
        return SimulationRun.objects.create(params={"setting": "A100_4B"}, policies=["fcfs"], seeds=[0],
                                            created_by=dispatcher, **fields)

    running = new_run(status="running", started_at=timezone.now())
    waiting = new_run()
    assert tasks.claim(waiting.pk) == "busy"
    waiting.refresh_from_db()
    assert waiting.status == "pending"
    assert tasks.claim(waiting.pk, alone=False) == "claimed"  # eager: nothing to keep free
    SimulationRun.objects.filter(pk=waiting.pk).update(status="done")
    SimulationRun.objects.filter(pk=running.pk).update(started_at=timezone.now() - timedelta(hours=1))
    assert tasks.claim(new_run().pk) == "claimed"  # a run a dead worker left does not block the rest for ever
    SimulationRun.objects.filter(pk=running.pk).update(status="done")
    assert tasks.claim(running.pk) == "finished"
