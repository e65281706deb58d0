"""An upper bound on level-0 first-token attainment that no scheduling policy can beat (issue 17).

    .venv/bin/python benchmarks/level0_prefill_bound.py --seeds 0-9 --json var/level0_bound.json

A request's first token comes out of its prefill. Suppose the GPU prefilled only the level-0 prompts, shortest
first, and decoded nothing: the k-th first token comes after the k shortest prefills. The share of level-0
requests whose first token can come within the level-0 target is then at most the share whose prefill prefix
sum fits in it. Same workload generator and cost model as `scheduler.compare`; prints a table, writes JSON."""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scheduler.cli_args import parse_seeds  # noqa: E402
from scheduler.costmodel import SETTINGS  # noqa: E402
from scheduler.targets import first_token_targets  # noqa: E402
from scheduler.workload import WorkloadSpec, generate_workload  # noqa: E402


def bound_for(requests, model, target_s):
    """(level-0 requests, how many can have their first token within target_s, seconds of level-0 prefill)."""
    costs = sorted(model.prefill(r.prompt_tokens) for r in requests if r.urgency == 0)
    elapsed, within = 0.0, 0
    for cost in costs:
        elapsed += cost
        if elapsed > target_s:
            break
        within += 1
    return len(costs), within, sum(costs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="A100_4B")
    parser.add_argument("--user-request-gap", type=float, default=0.01)
    parser.add_argument("--max-concurrent-user-requests", type=int, default=50)
    parser.add_argument("--gap-num", type=int, default=20)
    parser.add_argument("--seeds", type=parse_seeds, default=list(range(10)))
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)
    model, target = SETTINGS[args.setting], first_token_targets()[0]
    rows = []
    for seed in args.seeds:
        spec = WorkloadSpec(user_request_gap=args.user_request_gap,
                            max_concurrent_user_requests=args.max_concurrent_user_requests, gap_num=args.gap_num,
                            seed=seed)
        total, within, prefill_s = bound_for(generate_workload(spec), model, target)
        rows.append({"seed": seed, "level0": total, "within_bound": within, "level0_prefill_s": round(prefill_s, 3)})
    total, within = sum(r["level0"] for r in rows), sum(r["within_bound"] for r in rows)
    print(f"| seed | level-0 requests | at most within {target:g} s | level-0 prefill s |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {r['level0']} | {r['within_bound']} | {r['level0_prefill_s']:.2f} |")
    share = within / total if total else None
    print(f"pooled: at most {within} of {total} = {share:.1%} of level-0 first tokens within {target:g} s "
          f"({args.setting}, gap {args.user_request_gap:g}, bursts up to {args.max_concurrent_user_requests})")
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps({"rows": rows, "pooled_share": share, "target_s": target,
                                                    "setting": args.setting}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
