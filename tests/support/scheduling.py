"""Scheduler test helpers: build a Scheduler tersely, run one step, name what a plan runs."""
from scheduler import SchedRequest, Scheduler, SchedulerConfig


def make(policy="semantic", **kw):
    kw.setdefault("kv_device_blocks", 10_000)
    return Scheduler(SchedulerConfig(policy=policy, **kw))


def req(rid, urgency=2, prompt=10, predicted=10, arrival=0.0, **kw):
    return SchedRequest(rid, urgency, prompt, predicted, arrival, **kw)


def run_step(sched, now, finished=()):
    plan = sched.schedule(now)
    sched.complete_step(now + 1.0, finished)
    return plan


def planned_ids(plan):
    return [r.request_id for r, _ in plan.prefill] + [r.request_id for r in plan.decode]
