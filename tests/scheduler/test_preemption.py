"""Urgency preemption, KEEP/SWAP/RECOMPUTE selection, anti-thrashing and the KV capacity invariant."""
import math
import random

import pytest

from scheduler import KVLocation, PreemptAction, RequestState
from tests.support.scheduling import make, planned_ids, req, run_step


def fill_with_low_urgency(sched, n, prompt=10, predicted=100):
    for i in range(n):
        sched.add(req(f"low{i}", urgency=4, prompt=prompt, predicted=predicted + i))
    run_step(sched, 0.0)
    run_step(sched, 1.0)


def test_strictly_more_urgent_request_preempts_with_keep_when_kv_has_room():
    sched = make("semantic", max_batch_size=2)
    fill_with_low_urgency(sched, 2)
    sched.add(req("urgent", urgency=0))
    plan = sched.schedule(2.0)
    assert [(r.request_id, a) for r, a in plan.preempt] == [("low1", PreemptAction.KEEP)]  # longest remaining
    assert "urgent" in planned_ids(plan) and "low1" not in planned_ids(plan)
    victim = sched.get("low1")
    assert victim.state is RequestState.PREEMPTED and victim.kv_location is KVLocation.DEVICE
    assert victim.preemptions == 1
    sched.complete_step(3.0)
    # the kept request resumes without swap-in or recompute once a slot frees
    run_step(sched, 3.0, finished=["urgent"])
    plan = sched.schedule(4.0)
    assert "low1" in planned_ids(plan) and not plan.swap_in
    assert victim.computed_tokens > 0 and victim.preempted_intervals == [(2.0, 4.0)]


def test_equal_urgency_and_non_semantic_policies_do_not_preempt():
    for policy, urgency in (("semantic", 4), ("pjf", 0), ("fcfs", 0), ("sjf", 0)):
        sched = make(policy, max_batch_size=2)
        fill_with_low_urgency(sched, 2)
        sched.add(req("new", urgency=urgency, predicted=1))
        plan = sched.schedule(2.0)
        assert plan.preempt == [], policy
        assert "new" not in planned_ids(plan)


def test_preemption_flag_off_disables_urgency_preemption():
    sched = make("semantic", max_batch_size=2, preemption=False)
    fill_with_low_urgency(sched, 2)
    sched.add(req("urgent", urgency=0))
    assert sched.schedule(2.0).preempt == []


def test_an_urgent_arrival_waits_for_a_slot_about_to_free_instead_of_preempting():
    # low0 has 10 steps of predicted work left (10 prompt tokens weigh 0 once prefilled), low1 far more
    sched = make("semantic", max_batch_size=2, preemption_min_wait=16)
    sched.add(req("low0", urgency=4, prompt=10, predicted=11))
    sched.add(req("low1", urgency=4, prompt=10, predicted=300))
    run_step(sched, 0.0)
    run_step(sched, 1.0)
    sched.add(req("urgent", urgency=0))
    plan = sched.schedule(2.0)
    assert plan.preempt == [] and "urgent" not in planned_ids(plan)  # low0 finishes within 16 steps
    sched.complete_step(3.0)
    run_step(sched, 3.0, finished=["low0"])
    assert "urgent" in planned_ids(sched.schedule(4.0))  # takes the freed slot, nobody displaced
    # with both running requests far from done, the same arrival preempts as before
    sched = make("semantic", max_batch_size=2, preemption_min_wait=16)
    fill_with_low_urgency(sched, 2)
    sched.add(req("urgent", urgency=0))
    assert [r.request_id for r, _ in sched.schedule(2.0).preempt] == ["low1"]


def test_preemption_min_wait_must_be_a_non_negative_number():
    for bad in (-1, float("inf"), True, "16"):
        with pytest.raises(ValueError, match="preemption_min_wait"):
            make("semantic", preemption_min_wait=bad)


def kv_tight(host_blocks, swap_cost, recompute_cost):
    # 2 blocks of 16 tokens each per low request (prompt 20 -> 21 tokens reserved); capacity 6 blocks
    sched = make("semantic", max_batch_size=4, kv_device_blocks=6, kv_block_size=16, kv_host_blocks=host_blocks,
                 swap_cost_per_token=swap_cost, recompute_cost_per_token=recompute_cost)
    fill_with_low_urgency(sched, 2, prompt=20)
    assert sched.kv_device_blocks_used == 4
    sched.add(req("urgent", urgency=0, prompt=40))  # needs 3 blocks; only 6-4-2(headroom)=0 free
    plan = sched.schedule(2.0)
    assert sched.kv_device_blocks_used <= 6
    return sched, plan


def test_kv_shortage_uses_recompute_without_host_space():
    sched, plan = kv_tight(host_blocks=0, swap_cost=1e-5, recompute_cost=1e-4)
    assert [a for _, a in plan.preempt] and all(a is PreemptAction.RECOMPUTE for _, a in plan.preempt)
    victim = plan.preempt[0][0]
    assert victim.kv_location is KVLocation.NONE and victim.computed_tokens == 0
    assert victim.prefill_target == victim.prompt_tokens + victim.generated_tokens
    assert "urgent" in planned_ids(plan)


def test_kv_shortage_swaps_when_host_has_room_and_swap_is_cheaper():
    sched, plan = kv_tight(host_blocks=100, swap_cost=1e-5, recompute_cost=1e-4)
    assert plan.preempt and all(a is PreemptAction.SWAP for _, a in plan.preempt)
    victim = plan.preempt[0][0]
    assert victim.kv_location is KVLocation.HOST and sched.kv_host_blocks_used == math.ceil(victim.computed_tokens / 16)
    sched.complete_step(3.0)
    run_step(sched, 3.0, finished=["urgent"])
    plan = sched.schedule(4.0)
    assert victim in plan.swap_in and victim.kv_location is KVLocation.DEVICE and sched.kv_host_blocks_used == 0


def test_kv_shortage_recomputes_when_swap_is_dearer():
    _, plan = kv_tight(host_blocks=100, swap_cost=1e-3, recompute_cost=1e-4)
    assert plan.preempt and all(a is PreemptAction.RECOMPUTE for _, a in plan.preempt)


def test_recomputed_request_regenerates_context_then_continues():
    sched, plan = kv_tight(host_blocks=0, swap_cost=1e-5, recompute_cost=1e-4)
    victim = plan.preempt[0][0]
    generated = victim.generated_tokens
    sched.complete_step(3.0)
    run_step(sched, 3.0, finished=["urgent"])
    for step in range(4, 8):
        run_step(sched, float(step))
    assert victim.generated_tokens > generated
    assert victim.computed_tokens == victim.prompt_tokens + victim.generated_tokens


def test_resumed_request_makes_progress_before_it_can_be_preempted_again():
    sched = make("semantic", max_batch_size=1, min_run_steps=1)
    sched.add(req("low", urgency=3, predicted=100))
    run_step(sched, 0.0)
    sched.add(req("u0", urgency=0, predicted=1))
    run_step(sched, 1.0, finished=["u0"])       # low is preempted (KEEP), u0 runs and finishes
    low = sched.get("low")
    assert low.preemptions == 1
    before = low.generated_tokens
    plan = sched.schedule(2.0)                  # low resumes
    assert planned_ids(plan) == ["low"]
    sched.add(req("u1", urgency=0, predicted=1))  # arrives while low's resumed step runs
    sched.complete_step(3.0)
    assert low.generated_tokens == before + 1     # the resume produced a token
    plan = sched.schedule(3.0)                  # now low may be displaced again
    assert [r.request_id for r, _ in plan.preempt] == ["low"]


def test_randomized_invariants_kv_never_over_capacity():
    """Property-style: random adds/cancels/overrides/finishes under tight KV never break the accounting."""
    all_actions = set()
    for seed in range(12):
        rng = random.Random(seed)
        policy = ("fcfs", "sjf", "pjf", "semantic")[seed % 4]
        capacity, bs = 40, 8
        sched = make(policy, max_batch_size=4, token_budget=48, kv_device_blocks=capacity, kv_block_size=bs,
                     kv_host_blocks=rng.choice((0, 10, 100)), swap_cost_per_token=rng.choice((1e-5, 1e-3)),
                     aging=bool(seed % 3 == 0))
        next_id = 0
        finish_p = 0.01 if seed % 2 else 0.08  # long outputs grow KV and force KV-pressure preemption
        actions = set()
        for step in range(300):
            for _ in range(rng.choice((0, 0, 1, 2))):
                sched.add(req(next_id, urgency=rng.randint(0, 4), prompt=rng.randint(1, 60),
                              predicted=rng.randint(1, 40), arrival=float(step)))
                next_id += 1
            if rng.random() < 0.1 and next_id:
                sched.cancel(rng.randrange(next_id))
            if rng.random() < 0.1 and len(sched):
                rid = rng.choice(sched.queue_order())
                sched.set_urgency(rid, rng.randint(0, 4))
            plan = sched.schedule(float(step))
            assert plan.batch_size <= 4 and plan.num_tokens <= 48
            assert 0 <= sched.kv_device_blocks_used <= capacity, (seed, step)
            assert sched.kv_host_blocks_used <= sched.config.kv_host_blocks
            live = [sched.get(i) for i in sched.queue_order()]
            assert sched.kv_device_blocks_used == sum(r.device_blocks for r in live)
            assert sched._running_counts == [sum(r.urgency == u for r in sched.running) for u in range(5)]
            assert list(sched.waiting_counts()) == [
                sum(r.urgency == u and r.state is not RequestState.RUNNING for r in live) for u in range(5)]
            for r, n in plan.prefill:
                assert r.state is RequestState.RUNNING and r.device_blocks * bs >= r.computed_tokens + n
            for r in plan.decode:
                assert r.state is RequestState.RUNNING and r.device_blocks * bs >= r.computed_tokens + 1
            for r, action in plan.preempt:
                assert r.state is RequestState.PREEMPTED
                actions.add(action)
            finished = [r.request_id for r in plan.decode if rng.random() < finish_p]
            sched.complete_step(step + 0.5, finished)
            for r in (sched.get(i) for i in sched.queue_order()):
                assert r.device_blocks >= sched.blocks_needed(r) or r.kv_location is not KVLocation.DEVICE
        all_actions.update(actions)
    assert all_actions == set(PreemptAction)  # the random runs really exercised every action
