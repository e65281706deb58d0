"""`python -m scheduler.bench`: queue-operation costs at 1k/10k/100k queued requests and simulator speed.

Wall-clock timing lives only here (benchmarks), never in tests or the simulator.
"""
from __future__ import annotations

import argparse
import random
import sys
import time

from .config import SchedulerConfig
from .core import Scheduler
from .request import SchedRequest
from .simulator import SimulationParams, run_simulation
from .urgency import LEAST_URGENT, MOST_URGENT

OPS = 2000


def _filled(policy: str, n: int, rng: random.Random) -> Scheduler:
    sched = Scheduler(SchedulerConfig(policy=policy, max_batch_size=16, kv_device_blocks=10_000_000))
    for i in range(n):
        sched.add(SchedRequest(i, rng.randint(MOST_URGENT, LEAST_URGENT), rng.randint(1, 500), rng.randint(1, 500),
                               i * 1e-3))
    return sched


def bench_operations(policy: str, n: int, seed: int = 0) -> dict:
    """Microseconds per operation with n requests queued."""
    rng = random.Random(seed)
    sched = _filled(policy, n, rng)
    extra = [SchedRequest(("x", i), rng.randint(MOST_URGENT, LEAST_URGENT), rng.randint(1, 500), rng.randint(1, 500),
                          n * 1e-3) for i in range(OPS)]
    t0 = time.perf_counter()
    for req in extra:
        sched.add(req)
    add_us = (time.perf_counter() - t0) / OPS * 1e6
    ids = [rng.randrange(n) for _ in range(OPS)]
    levels = [rng.randint(MOST_URGENT, LEAST_URGENT) for _ in range(OPS)]
    t0 = time.perf_counter()
    for rid, level in zip(ids, levels):
        sched.set_urgency(rid, level)
    set_us = (time.perf_counter() - t0) / OPS * 1e6
    t0 = time.perf_counter()
    for req in extra:
        sched.cancel(req.request_id)
    cancel_us = (time.perf_counter() - t0) / OPS * 1e6
    rounds = 200
    elapsed = 0.0
    admitted = 0
    for r in range(rounds):
        t0 = time.perf_counter()
        plan = sched.schedule(float(r))
        sched.complete_step(float(r) + 0.5)
        elapsed += time.perf_counter() - t0
        admitted += len(plan.prefill)
        for req, _ in plan.prefill:  # keep the queue size constant: requeue a fresh copy
            sched.cancel(req.request_id)
            sched.add(SchedRequest(("r", r, req.request_id), req.urgency, req.prompt_tokens,
                                   req.predicted_output_tokens, float(r)))
    return {"policy": policy, "queued": n, "add_us": add_us, "set_urgency_us": set_us, "cancel_us": cancel_us,
            "schedule_batch_us": elapsed / rounds * 1e6, "per_admitted_us": elapsed / max(admitted, 1) * 1e6}


def bench_simulator(policy: str, gap_num: int) -> dict:
    params = SimulationParams(policy=policy, setting="A100_4B", user_request_gap=0.01,
                              max_concurrent_user_requests=50, gap_num=gap_num, seed=0, record_requests=False)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = run_simulation(params)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"policy": policy, "requests": result.num_requests, "steps": result.steps, "wall_s": wall, "cpu_s": cpu,
            "requests_per_s": result.num_requests / wall}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scheduler.bench", description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000", help="queued-request counts")
    parser.add_argument("--sim-gap-num", type=int, default=4000, help="arrival instants (about 25 requests each)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for smoke tests")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if any(s < 1 for s in sizes) or args.sim_gap_num < 1:
        parser.error("--sizes and --sim-gap-num must be positive")
    if args.quick:
        sizes, args.sim_gap_num = [100, 1000], 20
    print("operation costs (microseconds per call; schedule_batch = schedule()+complete_step() admitting up to 16)")
    print(f"{'policy':>9} {'queued':>8} | {'add':>7} {'set_urg':>7} {'cancel':>7} | {'sched batch':>11} {'per admit':>9}")
    for policy in ("fcfs", "semantic"):
        for n in sizes:
            r = bench_operations(policy, n)
            print(f"{policy:>9} {n:>8} | {r['add_us']:>7.2f} {r['set_urgency_us']:>7.2f} {r['cancel_us']:>7.2f} | "
                  f"{r['schedule_batch_us']:>11.2f} {r['per_admitted_us']:>9.2f}")
    print("simulator speed (A100_4B, gap 0.01, burst 50, overloaded so the queue holds most requests)")
    for policy in ("fcfs", "semantic"):
        r = bench_simulator(policy, args.sim_gap_num)
        print(f"{policy:>9}: {r['requests']} requests, {r['steps']} steps in {r['wall_s']:.2f} s wall "
              f"({r['cpu_s']:.2f} s CPU) = {r['requests_per_s']:.0f} simulated requests/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
