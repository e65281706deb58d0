"""Shortest remaining work first inside a class (issue 17): a waiting request displaces the running request of
its own class with the most remaining work, but only for a clear gain and after a minimum run (anti-thrashing)."""
import pytest

from scheduler import PreemptAction, SchedulerConfig
from scheduler.simulator import SimulationParams, run_simulation
from tests.support.scheduling import make, planned_ids, req, run_step

WITHIN = dict(within_class_preemption=True, within_class_min_gain=10, within_class_min_run=3)


def running_pair(**config):
    """Two long level-2 requests running in a batch of 2, each past its first steps."""
    sched = make("semantic", max_batch_size=2, **config)
    sched.add(req("long_a", urgency=2, prompt=10, predicted=200))
    sched.add(req("long_b", urgency=2, prompt=10, predicted=100))
    for t in range(5):
        run_step(sched, float(t))
    return sched


def test_shorter_request_of_the_same_class_displaces_the_longest_running_one():
    sched = running_pair(**WITHIN)
    sched.add(req("short", urgency=2, prompt=10, predicted=20))
    plan = sched.schedule(5.0)
    assert [(r.request_id, a) for r, a in plan.preempt] == [("long_a", PreemptAction.KEEP)]
    assert "short" in planned_ids(plan) and "long_b" in planned_ids(plan)


def test_off_by_default_and_only_for_the_semantic_policy():
    for policy, config in (("semantic", {}), ("sjf", WITHIN), ("pjf", WITHIN)):
        sched = make(policy, max_batch_size=2, **config)
        sched.add(req("long_a", urgency=2, prompt=10, predicted=200))
        sched.add(req("long_b", urgency=2, prompt=10, predicted=100))
        for t in range(5):
            run_step(sched, float(t))
        sched.add(req("short", urgency=2, prompt=10, predicted=1))
        assert sched.schedule(5.0).preempt == [], policy


def test_a_gain_below_the_minimum_does_not_displace():
    sched = running_pair(**WITHIN)
    # long_b has 100 - 5 = 95 tokens left, long_a 195: a request needing 190 saves 5 < 10 tokens against long_a
    sched.add(req("nearly_as_long", urgency=2, prompt=1, predicted=190))
    assert sched.schedule(5.0).preempt == []


def test_a_request_that_just_resumed_cannot_be_displaced_before_its_minimum_run():
    sched = running_pair(**{**WITHIN, "within_class_min_run": 50})
    sched.add(req("short", urgency=2, prompt=10, predicted=20))
    assert sched.schedule(5.0).preempt == []


def test_other_classes_are_not_touched():
    sched = running_pair(**WITHIN)
    sched.add(req("short_but_less_urgent", urgency=3, prompt=1, predicted=1))
    assert sched.schedule(5.0).preempt == []


def test_the_anti_thrashing_bounds_cut_preemptions_without_slowing_the_urgent():
    """With every length mispredicted by up to 90%, re-estimation keeps reshuffling who has the most work left:
    without a gain and a minimum run the same requests are displaced again and again (each one a KV move)."""
    def run(gain, min_run):
        result = run_simulation(SimulationParams(
            policy="semantic", user_request_gap=0.05, max_concurrent_user_requests=30, gap_num=10,
            length_error_rate=1.0, length_error_distance=0.9, seed=5, within_class_preemption=True,
            within_class_min_gain=gain, within_class_min_run=min_run)).to_dict()
        return result["preemptions"]["total"], result["per_class"]["0"]["e2e"]["mean"]

    unguarded, unguarded_level0 = run(0, 0)
    guarded, guarded_level0 = run(32, 8)
    assert guarded * 5 <= unguarded, (guarded, unguarded)
    assert guarded_level0 <= unguarded_level0 * 1.01


@pytest.mark.parametrize("setting", ["A100_4B", "A5000_7B"])
def test_fast_forward_stays_identical_to_stepping_with_within_class_preemption(setting):
    kw = dict(policy="semantic", setting=setting, user_request_gap=0.05, max_concurrent_user_requests=30, gap_num=6,
              length_error_rate=0.5, seed=4, within_class_preemption=True, within_class_min_gain=8,
              within_class_min_run=4)
    fast = run_simulation(SimulationParams(fast_forward=True, **kw)).to_dict()
    slow = run_simulation(SimulationParams(fast_forward=False, **kw)).to_dict()
    assert fast["preemptions"]["total"] > 0  # the option did something on this workload
    fast.pop("params"), slow.pop("params")
    assert fast == slow


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="within_class_min_gain"):
        SchedulerConfig(within_class_min_gain=-1)
    with pytest.raises(ValueError, match="within_class_preemption"):
        SchedulerConfig(within_class_preemption="yes")
