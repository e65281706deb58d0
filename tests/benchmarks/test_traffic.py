"""The traffic generator of the demo and the load test: realistic, repeatable, honest about failures."""
import asyncio
import json

import pytest
from django.core.management import CommandError, call_command

from benchmarks import traffic
from benchmarks.launch import free_port
from tests.support.stack import Stack
from triage_site.intake.models import MedicalRequest


@pytest.fixture
def password_file(tmp_path, dispatcher):
    path = tmp_path / "password"
    path.write_text("correct horse battery\n")
    return path


def dataset_labels():
    labels = {}
    for path in traffic.DATASET_DIR.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            labels[row["text"]] = row["label"]
    return labels


def test_requests_are_repeatable_for_a_seed_and_span_every_urgency():
    first = traffic.RequestMaker(seed=3).next_fields()
    maker_a, maker_b, maker_c = traffic.RequestMaker(seed=3), traffic.RequestMaker(seed=3), traffic.RequestMaker(seed=4)
    run_a = [maker_a.next_fields() for _ in range(200)]
    assert run_a == [maker_b.next_fields() for _ in range(200)]
    assert run_a[0] == first
    assert run_a != [maker_c.next_fields() for _ in range(200)]
    labels = dataset_labels()
    assert {labels[fields["text"]] for fields in run_a} == {0, 1, 2, 3, 4}
    assert all(set(fields) == {"text", "caller_name", "callback_number", "location"} for fields in run_a)


def test_summary_counts_errors_and_takes_nearest_rank_percentiles():
    report = traffic.TrafficReport(rate=10, planned_seconds=1, wall_seconds=2.0, submissions=[
        *(traffic.Submission(seconds=n / 1000, request_id=n) for n in range(1, 20)),
        traffic.Submission(seconds=1.0, error="HTTP 500 "),
    ])
    summary = report.summary()
    assert (summary["submitted"], summary["accepted"], summary["errors"]) == (20, 19, 1)
    assert summary["error_examples"] == ["HTTP 500 "]
    assert summary["achieved_rate"] == 10.0
    assert summary["latency_ms"] == {"p50": 10.0, "p95": 19.0, "p99": 1000.0, "max": 1000.0}
    empty = traffic.TrafficReport(rate=1, planned_seconds=1).summary()
    assert empty["latency_ms"] == {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}


@pytest.mark.e2e
def test_generate_traffic_stores_every_request_it_sends(tmp_path):
    """Against the real server process (embedded mode here, the full stack under `make test-stack`)."""
    stack = Stack(tmp_path)
    try:
        stack.start_all()
        out = tmp_path / "summary.json"
        stack.manage("generate_traffic", "--url", stack.base_url, "--rate", "20", "--seconds", "1",
                     "--username", "e2e", "--password-file", str(stack.password_file), "--json", str(out))
        summary = json.loads(out.read_text())
        assert (summary["submitted"], summary["accepted"], summary["errors"]) == (20, 20, 0)
        texts = stack.manage("shell", "-c", "from triage_site.intake.models import MedicalRequest as M; "
                             "import json; print(json.dumps(list(M.objects.values_list('text', flat=True))))")
        texts = json.loads(texts.stdout.strip().splitlines()[-1])
        assert len(texts) == 20
        assert set(texts) <= set(dataset_labels())
    finally:
        stack.close()


@pytest.mark.django_db(transaction=True)
def test_a_wrong_password_is_a_clear_error(live_server, tmp_path, dispatcher):
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password")
    with pytest.raises(CommandError, match="sign-in as 'dispatcher1' failed"):
        call_command("generate_traffic", url=live_server.url, rate=1, seconds=1, username="dispatcher1",
                     password_file=wrong, wait=10)
    assert MedicalRequest.objects.count() == 0


def test_an_unreachable_server_and_bad_arguments_are_clear_errors(tmp_path):
    password = tmp_path / "password"
    password.write_text("x")
    with pytest.raises(CommandError, match="did not answer within 0 s"):
        call_command("generate_traffic", url=f"http://127.0.0.1:{free_port()}", password_file=password, wait=0)
    with pytest.raises(CommandError, match="cannot read the password file"):
        call_command("generate_traffic", password_file=tmp_path / "missing", wait=0)
    with pytest.raises(traffic.TrafficError, match="rate must be above 0"):
        asyncio.run(traffic.run("http://127.0.0.1:1", "u", "p", rate=-1, seconds=1))
