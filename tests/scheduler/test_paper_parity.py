"""The paper's own requests (drawn by its code's generator, seed 0; docs/scheduler.md, "Parity with the paper's
code") replay through our simulator at its batch size, every policy on the same requests."""
from pathlib import Path

from scheduler.simulator import SimulationParams, run_simulation
from scheduler.workload import load_trace

TRACE = Path(__file__).resolve().parents[2] / "benchmarks" / "paper_parity" / "headline_requests.jsonl"


def level0_and_overall(policy, **kw):
    result = run_simulation(SimulationParams(policy=policy, trace=str(TRACE), batch_size=16, **kw)).to_dict()
    return result["per_class"]["0"]["e2e"]["mean"], result["per_class"]["overall"]["e2e"]["mean"]


def test_the_papers_requests_load_as_its_generator_drew_them():
    requests = load_trace(str(TRACE))
    assert len(requests) == 495 and sum(r.urgency == 0 for r in requests) == 115
    assert max(r.arrival_time for r in requests) < 0.2  # 20 instants 0.01 s apart
    assert all(1 <= r.prompt_tokens < 500 and 1 <= r.output_tokens < 500 for r in requests)


def test_replaying_them_semantic_serves_urgency_0_first_and_no_policy_is_worse_overall_than_fcfs():
    semantic, semantic_overall = level0_and_overall("semantic")
    pjf, pjf_overall = level0_and_overall("pjf")
    fcfs, fcfs_overall = level0_and_overall("fcfs")
    assert semantic < pjf < fcfs / 3
    assert semantic_overall <= min(pjf_overall, fcfs_overall)
    within, _ = level0_and_overall("semantic", within_class_preemption=True, prefill_cost="longest")
    longest, _ = level0_and_overall("semantic", prefill_cost="longest")
    assert within < min(longest, semantic)  # its accounting and its re-ranking inside a class: our fastest


def test_ranking_by_remaining_time_serves_their_urgency_0_sooner_than_ranking_by_tokens():
    """The default weighs a prompt token at the batch size times the cost model's c2p/c2d (16 x 0.0088 on A100_4B)."""
    by_time, by_time_overall = level0_and_overall("semantic")
    by_tokens, by_tokens_overall = level0_and_overall("semantic", prefill_token_weight=1.0)
    assert by_time < by_tokens and by_time_overall < by_tokens_overall
    params = SimulationParams(trace=str(TRACE))
    assert round(params.scheduler_config().prefill_token_weight, 3) == 0.141
