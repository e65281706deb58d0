"""Aging: promotion never above urgency 0, starvation is bounded, and the simulated bound holds."""
from scheduler.compare import run_comparison
from scheduler.simulate import build_parser
from tests.support.scheduling import make, planned_ids, req, run_step


def test_starving_request_is_promoted_but_never_above_urgency_zero():
    sched = make("semantic", max_batch_size=1, aging=True, aging_bound=1.0)
    sched.add(req("old", urgency=4, predicted=1, arrival=0.0, max_output_tokens=1))
    # a steady stream of urgency-1 requests would starve "old" forever without aging
    served = []
    for step in range(40):
        sched.add(req(f"u{step}", urgency=1, predicted=1, arrival=float(step), max_output_tokens=1))
        plan = run_step(sched, float(step), finished=[])
        served += planned_ids(plan)
        old = sched.get("old")
        if old is not None:
            assert 0 <= old.effective_urgency <= 4
    assert "old" in served
    assert served.index("old") <= 4 + 1  # ahead: 0 waiting -> promoted one level per admission (bound 1 x max(0,1))


def test_without_aging_the_same_stream_starves_the_low_class():
    sched = make("semantic", max_batch_size=1, aging=False)
    sched.add(req("old", urgency=4, predicted=1, max_output_tokens=1))
    served = []
    for step in range(40):
        sched.add(req(f"u{step}", urgency=1, predicted=1, arrival=float(step), max_output_tokens=1))
        served += planned_ids(run_step(sched, float(step)))
    assert "old" not in served


def test_aged_request_stays_behind_native_urgency_zero():
    sched = make("semantic", max_batch_size=1, aging=True, aging_bound=1.0)
    for i in range(8):
        sched.add(req(f"w{i}", urgency=1, predicted=1, max_output_tokens=1))
    sched.add(req("old", urgency=4, predicted=1, max_output_tokens=1))  # 8 ahead: one level per 2 admissions
    for step in range(8):
        sched.add(req(f"u{step}", urgency=1, predicted=1, arrival=float(step), max_output_tokens=1))
        assert planned_ids(run_step(sched, float(step))) != ["old"]
    sched.add(req("native0", urgency=0, predicted=50, arrival=8.0, max_output_tokens=1))
    assert planned_ids(run_step(sched, 8.0)) == ["native0"]   # old is now class 0 but behind native class 0
    assert sched.get("old").effective_urgency == 0
    assert planned_ids(run_step(sched, 9.0)) == ["old"]       # and ahead of every native class-1 request


def test_simulated_urgency4_p99_within_bound_of_fcfs():
    """Sustained overload (gap 1 s, bursts up to 10): semantic without aging starves urgency 4; with aging its
    p99 waiting stays within aging_bound x FCFS's urgency-4 p99."""
    args = build_parser().parse_args(["--user-request-gap", "1.0", "--max-concurrent-user-requests", "10",
                                      "--gap-num", "60", "--aging-bound", "2.0"])
    report = run_comparison(args, [0, 1, 2])
    v = report["variants"]
    fcfs_p99 = v["fcfs"]["pooled"]["4"]["p99_waiting"]
    aged_p99 = v["semantic+aging"]["pooled"]["4"]["p99_waiting"]
    starved_p99 = v["semantic"]["pooled"]["4"]["p99_waiting"]
    assert aged_p99 <= 2.0 * fcfs_p99
    assert starved_p99 > 2.0 * fcfs_p99  # the test would fail if aging did nothing
