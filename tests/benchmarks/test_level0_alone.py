"""The seed's urgency-0 requests alone: the lower bound no schedule beats, and shortest first by hand."""
import importlib.util
import json
from pathlib import Path

from scheduler.costmodel import CostModel
from scheduler.workload import WorkloadRequest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "paper_parity" / "level0_alone.py"
spec = importlib.util.spec_from_file_location("level0_alone", SCRIPT)
level0_alone = importlib.util.module_from_spec(spec)
spec.loader.exec_module(level0_alone)

# prefill(p) = p / 100 s and a decode step 0.01 s, whatever the context
LINEAR = CostModel("linear", 0.0, 0.01, 0.0, 0.01, 40, 1e-4, 4, 1)


def request(prompt, output):
    return WorkloadRequest(0, 0.0, 0, prompt, output, 0, output)


def test_with_one_slot_the_bound_is_reached_by_shortest_first():
    # A: 1 s prefill then 10 decode steps, done at 1.1 s; B: after A, 1 s prefill and 20 steps, done at 2.3 s
    requests = [request(100, 21), request(100, 11)]
    assert abs(level0_alone.shortest_first_by_hand(requests, LINEAR, 1) - 1.7) < 1e-9
    assert abs(level0_alone.lower_bound(requests, LINEAR, 1) - 1.7) < 1e-9


def test_with_slots_to_share_the_bound_stays_below_what_shortest_first_pays():
    requests = [request(30 + 7 * i, 5 + 13 * i) for i in range(9)]
    assert level0_alone.lower_bound(requests, LINEAR, 4) < level0_alone.shortest_first_by_hand(requests, LINEAR, 4)


def test_the_command_replays_the_seeds_requests(tmp_path, capsys):
    out = tmp_path / "alone.json"
    level0_alone.main(["--json", str(out)])
    figures = json.loads(out.read_text())
    assert figures["requests"] == 115
    means = figures["mean_e2e_s"]
    assert means["lower bound, any schedule"] < min(v for k, v in means.items() if k != "lower bound, any schedule")
    assert "urgency-0 requests" in capsys.readouterr().out
