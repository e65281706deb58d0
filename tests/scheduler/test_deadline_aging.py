"""Deadline-aware aging: a waiting request reaches class 0 by 75% of its class's first-token target, never above
it, behind every native request of the class it enters, and it never preempts."""
import pytest

from tests.support.scheduling import make, planned_ids, req, run_step

TARGETS = (2.0, 10.0, 60.0, 40.0, 80.0)  # level 3: class 0 by 30 s, one level every 10 s


def deadline(**kw):
    return make("semantic", aging=True, aging_mode="deadline", deadline_targets=TARGETS, **kw)


def test_promoted_one_level_per_share_of_its_target_and_never_above_zero():
    sched = deadline(max_batch_size=1)
    sched.add(req("busy", urgency=0, predicted=1000, arrival=0.0))  # holds the only slot throughout
    sched.add(req("low", urgency=3, predicted=1, arrival=0.0))
    seen = {}
    for second in range(0, 61):
        run_step(sched, float(second))
        seen[second] = sched.get("low").effective_urgency
    assert [seen[t] for t in (0, 9, 10, 19, 20, 29, 30, 60)] == [3, 3, 2, 2, 1, 1, 0, 0]


def test_the_guarantee_in_class_0_by_75_percent_of_the_target_then_first_when_a_slot_frees():
    """A steady stream of level-1 requests starves a level-3 request without aging; with deadline aging it is
    served at the first admission after 75% of its target."""
    def serve(aging):
        sched = make("semantic", max_batch_size=1, aging=aging, aging_mode="deadline", deadline_targets=TARGETS)
        sched.add(req("low", urgency=3, predicted=1, arrival=0.0, max_output_tokens=1))
        for second in range(60):
            sched.add(req(f"u{second}", urgency=1, predicted=1, arrival=float(second), max_output_tokens=1))
            if "low" in planned_ids(run_step(sched, float(second))):
                return second
        return None

    assert serve(aging=False) is None
    assert serve(aging=True) == 30  # 0.75 x 40 s


def test_an_aged_request_waits_behind_native_class_0_and_preempts_nothing():
    sched = deadline(max_batch_size=1)
    sched.add(req("running1", urgency=1, predicted=1000, arrival=0.0))
    run_step(sched, 0.0)
    sched.add(req("low", urgency=3, predicted=1, arrival=0.0, max_output_tokens=1))
    for second in range(1, 41):
        plan = run_step(sched, float(second))
        assert not plan.preempt, f"an aged request preempted at {second} s"
    assert sched.get("low").effective_urgency == 0
    assert planned_ids(run_step(sched, 41.0)) == ["running1"]
    # a native class-0 arrival still preempts, and goes before the aged one
    sched.add(req("native0", urgency=0, predicted=5, arrival=41.0, max_output_tokens=1))
    plan = run_step(sched, 42.0)
    assert planned_ids(plan) == ["native0"] and plan.preempt


@pytest.mark.parametrize("bad, message", [
    ({"aging_mode": "calendar"}, "aging_mode must be one of"),
    ({"deadline_targets": (1, 2, 3)}, "deadline_targets must be 5 positive numbers"),
    ({"deadline_share": 0}, "deadline_share must be in"),
])
def test_bad_deadline_settings_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        make("semantic", aging=True, **bad)


def test_compare_reports_the_deadline_variant_against_fcfs():
    from scheduler.compare import run_comparison
    from scheduler.simulate import build_parser

    args = build_parser().parse_args(["--user-request-gap", "1.0", "--max-concurrent-user-requests", "10",
                                      "--gap-num", "30"])
    report = run_comparison(args, [0])
    assert "semantic+deadline" in report["variants"]
    pooled = report["variants"]["semantic+deadline"]["pooled"]
    assert all(0.0 <= pooled[c]["attainment"] <= 1.0 for c in ("0", "1", "2", "3", "4", "overall")
               if pooled[c]["attainment"] is not None)
