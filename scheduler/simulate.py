"""`python -m scheduler.simulate`: run one policy on one workload, print a per-class table, optionally write JSON."""
from __future__ import annotations

import argparse
import json
import sys

from .cli_args import POLICY_CHOICES, _number, add_workload_arguments, params_from_args
from . import targets
from .metrics import CLASSES
from .simulator import SimulationResult, run_simulation


def format_attainment(attainment) -> str:
    return "—" if not attainment or attainment["share"] is None else f"{attainment['share']:.1%}"


def format_targets(seconds) -> str:
    return ", ".join(f"{level}: {target:g} s" for level, target in enumerate(seconds))


def format_table(result: SimulationResult) -> str:
    header = (f"{'class':>7} {'n':>6} | {'wait mean':>9} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} | "
              f"{'ttft mean':>9} | {'e2e mean':>9} {'p99':>8} | {'in target':>9}")
    lines = [header, "-" * len(header)]
    for name in CLASSES:
        m = result.per_class[name]
        w, tt, e = m["waiting"], m["ttft"], m["e2e"]
        lines.append(f"{name:>7} {w['count']:>6} | {w['mean']:>9.3f} {w['p50']:>8.3f} {w['p95']:>8.3f} "
                     f"{w['p99']:>8.3f} {w['max']:>8.3f} | {tt['mean']:>9.3f} | {e['mean']:>9.3f} {e['p99']:>8.3f} | "
                     f"{format_attainment(m.get('attainment')):>9}")
    p = result.preemptions
    lines.append(f"throughput {result.throughput_requests_per_s:.3f} req/s, {result.throughput_tokens_per_s:.1f} tok/s; "
                 f"makespan {result.makespan_s:.3f} s; steps {result.steps}; mean batch {result.mean_batch_size:.2f} "
                 f"(occupancy {result.mean_batch_occupancy:.1%}); KV mean {result.kv_utilization_mean:.1%} "
                 f"max {result.kv_utilization_max:.1%}; preemptions {p['total']} "
                 f"(keep {p['keep']}, swap {p['swap']}, recompute {p['recompute']})")
    lines.append("times in seconds; wait = arrival -> first token, ttft = scheduler enqueue (after classifier) -> "
                 "first token, e2e = arrival -> finish (the paper's 'waiting time'); in target = share of the class "
                 f"whose first token came within its target ({format_targets(targets.first_token_targets())}; "
                 f"{targets.FIRST_TOKEN_SETTING})")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scheduler.simulate", description=__doc__)
    parser.add_argument("--policy", choices=POLICY_CHOICES, default="semantic")
    parser.add_argument("--seed", type=_number(int), default=0)
    add_workload_arguments(parser)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        params = params_from_args(args, args.policy, args.seed)
        result = run_simulation(params)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    print(f"policy={params.policy} setting={params.setting} gap={params.user_request_gap} "
          f"burst={params.max_concurrent_user_requests} gap_num={params.gap_num} seed={params.seed} "
          f"aging={params.aging} prefill_token_weight={params.resolved_prefill_token_weight():.4g} "
          f"preemption_min_wait={params.resolved_preemption_min_wait():.3g} "
          f"requests={result.num_requests}")
    print(format_table(result))
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as handle:
            json.dump(result.to_dict(), handle, sort_keys=True)
        print(f"wrote {args.json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
