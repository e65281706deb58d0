"""set_urgency and cancel take effect at the next schedule()."""
import pytest

from tests.support.scheduling import make, planned_ids, req, run_step


def test_set_urgency_on_waiting_request_changes_next_batch():
    sched = make("semantic", max_batch_size=1)
    sched.add(req("a", urgency=1))
    sched.add(req("b", urgency=3))
    sched.set_urgency("b", 0)
    assert sched.queue_order() == ["b", "a"]
    assert planned_ids(sched.schedule(0.0)) == ["b"]


def test_raising_a_running_request_protects_it_lowering_makes_it_preemptible():
    sched = make("semantic", max_batch_size=1)
    sched.add(req("run", urgency=0, predicted=100))
    run_step(sched, 0.0)
    sched.add(req("wait", urgency=1))
    assert sched.schedule(1.0).preempt == []
    sched.complete_step(2.0)
    sched.set_urgency("run", 4)   # override: not urgent after all
    plan = sched.schedule(2.0)
    assert [r.request_id for r, _ in plan.preempt] == ["run"] and planned_ids(plan) == ["wait"]


def test_cancel_waiting_request_removes_it_from_next_batch():
    sched = make("fcfs", max_batch_size=1)
    sched.add(req("a"))
    sched.add(req("b", arrival=1.0))
    assert sched.cancel("a").cancelled
    assert planned_ids(sched.schedule(0.0)) == ["b"]
    assert sched.cancel("missing") is None


def test_cancel_running_request_frees_kv_and_slot():
    sched = make("fcfs", max_batch_size=1)
    sched.add(req("a", prompt=100))
    sched.add(req("b", arrival=1.0))
    run_step(sched, 0.0)
    assert sched.kv_device_blocks_used > 0
    sched.cancel("a")
    assert sched.kv_device_blocks_used == 0
    assert planned_ids(sched.schedule(1.0)) == ["b"]


def test_cancel_between_schedule_and_complete_step_is_skipped():
    sched = make("fcfs")
    sched.add(req("a"))
    sched.schedule(0.0)
    sched.cancel("a")
    assert sched.complete_step(1.0) == [] and sched.kv_device_blocks_used == 0


def test_set_urgency_rejects_bad_values_and_unknown_ids():
    sched = make()
    sched.add(req("a"))
    with pytest.raises(ValueError, match="urgency"):
        sched.set_urgency("a", 7)
    with pytest.raises(KeyError):
        sched.set_urgency("zzz", 1)


def test_waiting_counts_track_overrides():
    sched = make()
    sched.add(req("a", urgency=2))
    sched.add(req("b", urgency=4))
    sched.set_urgency("b", 0)
    assert sched.waiting_counts() == (1, 0, 1, 0, 0)
    sched.cancel("a")
    assert sched.waiting_counts() == (1, 0, 0, 0, 0)
