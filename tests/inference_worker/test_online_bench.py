"""`python -m inference_worker.bench --online`: the seed's arrivals in real time through the real engine (tiny
model), every policy and transformers' continuous batching on identical arrivals, one table and a JSON file."""
import json

import pytest

from inference_worker import bench
from scheduler.workload import WorkloadSpec, generate_workload

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_online_policy_all_serves_every_request_and_reports_each_policy(tmp_path, capsys):
    out = tmp_path / "online.json"
    # One burst at t=0 of up to 40 requests through a batch of 2: a backlog in which the order of service decides
    # who waits, so urgency-first service must give level 0 a far earlier first token than first come, first served.
    bench.main(["--online", "--policy", "all", "--model", "tiny", "--seed", "3", "--gap-num", "1",
                "--max-concurrent-user-requests", "40", "--user-request-gap", "0.01", "--max-len", "24",
                "--max-batch-size", "2", "--json", str(out)])
    text = capsys.readouterr().out
    assert "time scale" in text and "A100_4B" in text
    assert "| 0 | semantic |" in text and "| overall | transformers CB |" in text
    assert "level-0 mean time to first token against FCFS" in text
    data = json.loads(out.read_text())
    assert data["systems"] == ["fcfs", "sjf", "pjf", "semantic", "transformers CB"]
    requests = data["per_seed"]["3"]["requests"]
    assert requests > 10
    for system in data["systems"]:
        overall = data["pooled"][system]["overall"]
        assert overall["waiting"]["count"] == requests, system   # every request got its first token
        assert overall["e2e"]["count"] == requests, system
        assert overall["attainment"]["total"] == requests
    level0 = {s: data["pooled"][s]["0"]["waiting"]["mean"] for s in data["systems"]}
    assert data["pooled"]["semantic"]["0"]["waiting"]["count"] > 0
    assert level0["semantic"] < 0.7 * level0["fcfs"], level0


def test_online_time_scale_stretches_arrivals_and_targets(tmp_path, capsys):
    out = tmp_path / "online.json"
    bench.main(["--online", "--policy", "semantic", "--model", "tiny", "--seed", "0,1", "--gap-num", "2",
                "--max-concurrent-user-requests", "3", "--user-request-gap", "0.2", "--max-len", "8",
                "--time-scale", "2", "--skip-transformers", "--json", str(out)])
    text = capsys.readouterr().out
    assert "time scale 2.00" in text and "arrivals 0.4 s apart" in text and "(4, 20, 120, 600, 1800 s)" in text
    data = json.loads(out.read_text())
    assert data["seeds"] == [0, 1] and data["systems"] == ["semantic"]
    for seed in (0, 1):  # the run lasts at least until the last arrival, stretched by the scale
        arrivals = generate_workload(WorkloadSpec(user_request_gap=0.2, max_concurrent_user_requests=3, gap_num=2,
                                                  max_prompt_length=8, max_output_length=8, seed=seed))
        assert data["per_seed"][str(seed)]["requests"] == len(arrivals)
        assert data["per_seed"][str(seed)]["semantic"]["wall_s"] >= 2 * max(r.arrival_time for r in arrivals)


@pytest.mark.parametrize("argv, message", [
    (["--policy", "all"], "need --online"),
    (["--seed", "0-2"], "need --online"),
    (["--online", "--time-scale", "fast"], "--time-scale must be auto or a positive number"),
    (["--online", "--gap-num", "0"], "--gap-num and --max-len >= 1"),
])
def test_bad_arguments_are_refused_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(argv)
    assert message in capsys.readouterr().err
