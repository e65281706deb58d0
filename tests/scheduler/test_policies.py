"""Each policy's service order, batching limits, token accounting and re-estimation."""
import pytest

from scheduler import POLICIES, SchedulerConfig
from tests.support.scheduling import make, planned_ids, req, run_step

# (id, urgency, prompt, predicted output, arrival)
MIX = [("a", 3, 10, 50, 0.0), ("b", 0, 10, 400, 1.0), ("c", 3, 10, 5, 2.0), ("d", 0, 10, 20, 3.0), ("e", 1, 10, 1, 4.0)]


def order_for(policy):
    sched = make(policy, max_batch_size=1)
    for rid, u, p, o, t in MIX:
        sched.add(req(rid, u, p, o, t))
    return sched.queue_order()


def test_policies_constant():
    assert POLICIES == ("fcfs", "sjf", "pjf", "semantic")


def test_fcfs_serves_arrival_order():
    assert order_for("fcfs") == ["a", "b", "c", "d", "e"]


def test_sjf_serves_shortest_predicted_work():
    assert order_for("sjf") == ["e", "c", "d", "a", "b"]


def test_pjf_serves_urgency_then_fifo():
    assert order_for("pjf") == ["b", "d", "e", "a", "c"]


def test_semantic_serves_urgency_then_shortest():
    assert order_for("semantic") == ["d", "b", "e", "c", "a"]


def test_schedule_admits_in_policy_order_up_to_batch_size():
    sched = make("semantic", max_batch_size=2)
    for rid, u, p, o, t in MIX:
        sched.add(req(rid, u, p, o, t))
    plan = sched.schedule(0.0)
    assert planned_ids(plan) == ["d", "b"]
    assert sched.queue_order() == ["d", "b", "e", "c", "a"]


def test_chunked_prefill_respects_token_budget_and_first_token_comes_from_last_chunk():
    sched = make("fcfs", max_batch_size=4, token_budget=100)
    sched.add(req("long", prompt=250, predicted=5))
    plan = run_step(sched, 0.0)
    assert [(r.request_id, n) for r, n in plan.prefill] == [("long", 100)]
    r = sched.get("long")
    assert (r.computed_tokens, r.generated_tokens, r.first_token_time) == (100, 0, None)
    run_step(sched, 1.0)
    plan = run_step(sched, 2.0)
    assert [(x.request_id, n) for x, n in plan.prefill] == [("long", 50)]
    assert (r.computed_tokens, r.generated_tokens, r.first_token_time) == (251, 1, 3.0)
    plan = run_step(sched, 3.0)
    assert plan.decode == [r] and r.generated_tokens == 2


def test_decodes_are_planned_before_prefills_and_budget_is_never_exceeded():
    sched = make("fcfs", max_batch_size=8, token_budget=20)
    for i in range(8):
        sched.add(req(i, prompt=15, predicted=50))
    for step in range(30):
        plan = sched.schedule(float(step))
        assert plan.num_tokens <= 20
        assert plan.batch_size <= 8
        sched.complete_step(step + 1.0)


def test_eos_and_max_output_tokens_finish_and_free_kv():
    sched = make("fcfs")
    sched.add(req("eos", predicted=100))
    sched.add(req("cap", predicted=100, max_output_tokens=3))
    run_step(sched, 0.0)
    run_step(sched, 1.0, finished=["eos"])
    assert sched.get("eos") is None
    run_step(sched, 2.0)
    assert sched.get("cap") is None and len(sched) == 0
    assert sched.kv_device_blocks_used == 0


def test_running_past_prediction_re_estimates_remaining_work():
    sched = make("semantic", max_batch_size=1)
    sched.add(req("r", predicted=2))
    running = sched.get("r")
    for step in range(5):
        run_step(sched, float(step))
        assert running.estimated_output_tokens > running.generated_tokens
        assert running.predicted_remaining_work >= 1
    assert running.generated_tokens == 5 and running.estimated_output_tokens >= 6


def test_complete_step_requires_schedule_and_schedule_requires_complete_step():
    sched = make()
    with pytest.raises(RuntimeError):
        sched.complete_step(0.0)
    sched.schedule(0.0)
    with pytest.raises(RuntimeError, match="complete_step"):
        sched.schedule(1.0)


@pytest.mark.parametrize("kwargs, field", [
    ({"policy": "lifo"}, "policy"), ({"max_batch_size": 0}, "max_batch_size"),
    ({"token_budget": 4, "max_batch_size": 8}, "token_budget"), ({"kv_block_size": -1}, "kv_block_size"),
    ({"kv_device_blocks": 0}, "kv_device_blocks"), ({"kv_host_blocks": -1}, "kv_host_blocks"),
    ({"aging_bound": 0.5}, "aging_bound"), ({"swap_cost_per_token": -1.0}, "swap_cost_per_token"),
    ({"max_batch_size": 2.5}, "max_batch_size"),
])
def test_bad_config_raises_clear_value_error(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SchedulerConfig(**kwargs)


@pytest.mark.parametrize("args, field", [
    ((1, 5, 10, 10, 0.0), "urgency"), ((1, -1, 10, 10, 0.0), "urgency"), ((1, 2, 0, 10, 0.0), "prompt_tokens"),
    ((1, 2, 10, 0, 0.0), "predicted_output_tokens"),
])
def test_bad_request_raises_clear_value_error(args, field):
    from scheduler import SchedRequest
    with pytest.raises(ValueError, match=field):
        SchedRequest(*args)


def test_duplicate_id_and_oversized_prompt_rejected():
    sched = make(kv_device_blocks=4, kv_block_size=16)
    sched.add(req("a"))
    with pytest.raises(ValueError, match="already queued"):
        sched.add(req("a"))
    with pytest.raises(ValueError, match="KV blocks"):
        sched.add(req("huge", prompt=1000))


def test_remaining_work_counts_a_prompt_token_as_its_share_of_a_decode_step():
    """A 480-token prompt with a 20-token answer is ~0.06 s of work on the A100_4B model, a 10-token prompt with a
    300-token answer ~3.6 s: counted in tokens (weight 1) the second looked shorter."""
    def first(weight):
        sched = make("semantic", max_batch_size=1, prefill_token_weight=weight)
        sched.add(req("long_prompt_short_answer", 0, prompt=480, predicted=20))
        sched.add(req("short_prompt_long_answer", 0, prompt=10, predicted=300))
        return sched.queue_order()[0]

    assert first(1.0) == "short_prompt_long_answer"
    assert first(0.14) == "long_prompt_short_answer"


@pytest.mark.parametrize("weight", [-0.1, float("nan"), float("inf"), "0.1", True, None])
def test_prefill_token_weight_must_be_a_finite_non_negative_number(weight):
    with pytest.raises(ValueError, match="prefill_token_weight"):
        SchedulerConfig(prefill_token_weight=weight)
