"""`python -m scheduler.compare`: every policy on the same seeded workloads; per class, each policy's mean waiting
time and its ratio to FCFS, plus the issue's target checks."""
from __future__ import annotations

import argparse
import json
import sys

from .cli_args import POLICY_CHOICES, add_workload_arguments, params_from_args, parse_seeds
from .simulator import run_simulation

CLASSES = ("0", "1", "2", "3", "4", "overall")


def run_comparison(args, seeds: list[int], include_aging: bool = True, progress=None) -> dict:
    """Returns {variant: {'per_seed': [...], 'pooled': {class: {metric: mean}}, 'p99_waiting': {...}}}."""
    variants = [(p, p, {"aging": False}) for p in POLICY_CHOICES]
    if include_aging:
        variants.append(("semantic+aging", "semantic", {"aging": True}))
    if args.trace:
        seeds = seeds[:1]  # a trace is fixed: one run per policy
    out = {}
    for label, policy, overrides in variants:
        sums = {c: {"waiting": 0.0, "e2e": 0.0, "count": 0} for c in CLASSES}
        waits = {c: [] for c in CLASSES}
        preemptions = 0
        for seed in seeds:
            result = run_simulation(params_from_args(args, policy, seed, **overrides))
            preemptions += result.preemptions["total"]
            for rec in result.requests:
                for c in (str(rec["urgency"]), "overall"):
                    sums[c]["waiting"] += rec["waiting"]
                    sums[c]["e2e"] += rec["e2e"]
                    sums[c]["count"] += 1
                    waits[c].append(rec["waiting"])
            if progress:
                progress(label, seed)
        pooled = {}
        for c in CLASSES:
            n = sums[c]["count"]
            ordered = sorted(waits[c])
            pooled[c] = {"count": n, "mean_waiting": sums[c]["waiting"] / n if n else 0.0,
                         "mean_e2e": sums[c]["e2e"] / n if n else 0.0,
                         "p99_waiting": ordered[max(0, -(-99 * n // 100) - 1)] if n else 0.0}
        out[label] = {"policy": policy, "pooled": pooled, "preemptions": preemptions}
    return {"seeds": seeds, "variants": out}


def format_comparison(report: dict, metric: str = "mean_waiting") -> str:
    variants = list(report["variants"])
    base = report["variants"]["fcfs"]["pooled"]
    header = f"{'class':>7} | " + " | ".join(f"{v:>22}" for v in variants)
    lines = [header, "-" * len(header)]
    for c in CLASSES:
        cells = []
        for v in variants:
            value = report["variants"][v]["pooled"][c][metric]
            ratio = value / base[c][metric] if base[c][metric] else float("nan")
            cells.append(f"{value:>10.3f}s x{ratio:>9.3f}")
        lines.append(f"{c:>7} | " + " | ".join(cells))
    return "\n".join(lines)


def target_checks(report: dict, aging_bound: float) -> list[str]:
    v = report["variants"]
    sem, fcfs, pjf, sjf = (v[k]["pooled"] for k in ("semantic", "fcfs", "pjf", "sjf"))
    cut = 1 - sem["0"]["mean_waiting"] / fcfs["0"]["mean_waiting"]
    lines = [
        f"urgency-0 mean waiting, semantic vs FCFS: {sem['0']['mean_waiting']:.3f}s vs {fcfs['0']['mean_waiting']:.3f}s "
        f"= {cut:.1%} cut (target >= 47%): {'MET' if cut >= 0.47 else 'MISSED'}",
        f"urgency-0 mean waiting, semantic vs PJF: {sem['0']['mean_waiting']:.3f}s vs {pjf['0']['mean_waiting']:.3f}s "
        f"(target: not worse): {'MET' if sem['0']['mean_waiting'] <= pjf['0']['mean_waiting'] else 'MISSED'}",
    ]
    over = sem["overall"]["mean_e2e"] / sjf["overall"]["mean_e2e"] - 1
    lines.append(f"overall mean end-to-end latency, semantic vs SJF: {sem['overall']['mean_e2e']:.3f}s vs "
                 f"{sjf['overall']['mean_e2e']:.3f}s = {over:+.1%} (target <= +10%): {'MET' if over <= 0.10 else 'MISSED'}")
    if "semantic+aging" in v:
        aged = v["semantic+aging"]["pooled"]["4"]["p99_waiting"]
        bound = aging_bound * fcfs["4"]["p99_waiting"]
        lines.append(f"urgency-4 p99 waiting with aging: {aged:.3f}s vs bound {aging_bound} x FCFS p99 "
                     f"{fcfs['4']['p99_waiting']:.3f}s = {bound:.3f}s: {'MET' if aged <= bound else 'MISSED'} "
                     f"(without aging: {v['semantic']['pooled']['4']['p99_waiting']:.3f}s)")
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scheduler.compare", description=__doc__)
    parser.add_argument("--seeds", type=parse_seeds, default=[0], help="e.g. 0-9 or 0,2,5")
    parser.add_argument("--no-aging-variant", action="store_true", help="skip the semantic+aging run")
    add_workload_arguments(parser)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.aging:
        parser.error("--aging is implied: compare always runs semantic with and without aging "
                     "(use --no-aging-variant to skip it)")
    try:
        params_from_args(args, "fcfs", args.seeds[0])  # validate once before the long run
        report = run_comparison(args, args.seeds, include_aging=not args.no_aging_variant)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    src = f"trace={args.trace}" if args.trace else (f"gap={args.user_request_gap} burst={args.max_concurrent_user_requests} "
                                                    f"gap_num={args.gap_num}")
    print(f"setting={args.setting} {src} seeds={report['seeds'][0]}..{report['seeds'][-1]} "
          f"({len(report['seeds'])} workloads, requests pooled)")
    print("mean waiting (arrival -> first token), ratio to FCFS:")
    print(format_comparison(report, "mean_waiting"))
    print("mean end-to-end latency (arrival -> finish; the paper's 'waiting time'), ratio to FCFS:")
    print(format_comparison(report, "mean_e2e"))
    for line in target_checks(report, args.aging_bound):
        print(line)
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as handle:
            json.dump(report, handle, sort_keys=True)
        print(f"wrote {args.json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
