"""The level-0 attainment bound: prefix sums of the shortest level-0 prefills against the target."""
from benchmarks import level0_prefill_bound as bound
from scheduler.costmodel import CostModel
from scheduler.workload import WorkloadRequest

# prefill(p) = p / 100 s, so a prompt of 100 tokens takes 1 s
LINEAR = CostModel("linear", 0.0, 0.01, 0.0, 0.01, 40, 1e-4, 4, 1)


def request(urgency, prompt):
    return WorkloadRequest(0, 0.0, urgency, prompt, 10, urgency, 10)


def test_only_the_shortest_prefills_that_fit_in_the_target_count_and_other_levels_do_not():
    requests = [request(0, 150), request(0, 50), request(0, 100), request(3, 1), request(0, 300)]
    assert bound.bound_for(requests, LINEAR, 2.0) == (4, 2, 6.0)   # 0.5 s, then 1.5 s; 3 s > 2 s
    assert bound.bound_for(requests, LINEAR, 0.1) == (4, 0, 6.0)


def test_the_command_prints_the_pooled_bound(tmp_path, capsys):
    out = tmp_path / "bound.json"
    assert bound.main(["--seeds", "0-1", "--json", str(out)]) == 0
    assert "pooled: at most" in capsys.readouterr().out and out.exists()
