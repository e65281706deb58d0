"""Argument parsing shared by `simulate` and `compare`, with clear errors for bad parameters."""
from __future__ import annotations

import argparse

from .config import AGING_MODES, POLICIES
from .costmodel import SETTINGS
from .simulator import PREFILL_COSTS, SimulationParams
from .workload import load_confusion
from .urgency import LEAST_URGENT, MOST_URGENT


def _number(kind, low=None, high=None, low_open=False):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}")
        if value != value:
            raise argparse.ArgumentTypeError("NaN is not allowed")
        if low is not None and (value < low or (low_open and value == low)):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {low}, got {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high}, got {text}")
        return value
    return parse


def add_workload_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="A100_4B", help="hardware/model cost model")
    parser.add_argument("--user-request-gap", type=_number(float, 0), default=1.0, help="seconds between arrival instants")
    parser.add_argument("--max-concurrent-user-requests", type=_number(int, 0), default=5,
                        help="each arrival instant brings randint(0, this) requests")
    parser.add_argument("--gap-num", type=_number(int, 1), default=20, help="number of arrival instants")
    parser.add_argument("--batch-size", type=_number(int, 1), default=16)
    parser.add_argument("--token-budget", type=_number(int, 1), default=2048, help="tokens per step")
    parser.add_argument("--kv-block-size", type=_number(int, 1), default=16)
    parser.add_argument("--kv-host-gb", type=_number(float, 0), default=16.0, help="host memory for swapped KV")
    parser.add_argument("--priority-error-rate", type=_number(float, 0, 1), default=0.0)
    parser.add_argument("--priority-error-distance", type=_number(int, 0, LEAST_URGENT - MOST_URGENT), default=1)
    parser.add_argument("--length-error-rate", type=_number(float, 0, 1), default=0.0)
    parser.add_argument("--length-error-distance", type=_number(float, 0, 1), default=0.5,
                        help="relative error of a wrong length prediction")
    parser.add_argument("--classifier-latency", type=_number(float, 0), default=0.003, help="seconds per classifier call")
    parser.add_argument("--classifier-batch-size", type=_number(int, 1), default=5)
    parser.add_argument("--aging", action="store_true", help="enable aging (pjf/semantic)")
    parser.add_argument("--aging-bound", type=_number(float, 1), default=2.0,
                        help="aging promotes to class 0 within this multiple of the FCFS admission position")
    parser.add_argument("--aging-mode", choices=AGING_MODES, default="admissions",
                        help="admissions: within --aging-bound x the FCFS position; deadline: in class 0 by 75%% of the "
                             "class's first-token target (TRIAGE_FIRST_TOKEN_TARGETS_S)")
    parser.add_argument("--no-preemption", action="store_true", help="disable urgency preemption (semantic)")
    parser.add_argument("--preemption-min-wait", type=_number(float, 0, 1e6), default=None,
                        help="semantic: an urgent arrival waits instead of preempting while a running request is "
                             "predicted to finish within this many decode steps (default: the steps in a tenth of "
                             "level 0's first-token target, 16.7 on A100_4B; 0: always preempt)")
    parser.add_argument("--within-class-preemption", action="store_true",
                        help="semantic: a waiting request displaces the running request of its own class with the most "
                             "remaining work (shortest remaining first inside a class)")
    parser.add_argument("--within-class-min-gain", type=_number(int, 0), default=32,
                        help="anti-thrashing: only when that saves at least this many tokens of predicted work")
    parser.add_argument("--within-class-min-run", type=_number(int, 0), default=8,
                        help="anti-thrashing: steps a request runs after it (re)starts before it can be displaced")
    parser.add_argument("--confusion", metavar="FILE",
                        help="the classifier's measured errors: each request's predicted urgency is drawn from this "
                             "confusion matrix's row for its true urgency (the JSON of manage.py evaluate_classifier "
                             "--json); replaces --priority-error-rate")
    parser.add_argument("--prefill-cost", choices=PREFILL_COSTS, default="sum",
                        help="sum: a step's prefill chunks cost one after another (default); longest: side by side at "
                             "the cost of the longest, as the paper's code charges them (for parity with it)")
    parser.add_argument("--prefill-token-weight", type=_number(float, 0, 1000), default=None,
                        help="a prompt token's machine time over an output token's, when ranking by remaining work "
                             "(default: batch size x the setting's c2p/c2d, 0.14 for A100_4B at 16; 1 counts prompt "
                             "and output tokens alike)")
    parser.add_argument("--trace", help="JSON-lines trace file to replay instead of generating a workload")
    parser.add_argument("--json", dest="json_path", help="write results as JSON to this file")


def params_from_args(args: argparse.Namespace, policy: str, seed: int, **overrides) -> SimulationParams:
    params = SimulationParams(
        policy=policy, setting=args.setting, user_request_gap=args.user_request_gap,
        max_concurrent_user_requests=args.max_concurrent_user_requests, gap_num=args.gap_num,
        batch_size=args.batch_size, token_budget=args.token_budget, kv_block_size=args.kv_block_size,
        kv_host_gb=args.kv_host_gb, priority_error_rate=args.priority_error_rate,
        priority_error_distance=args.priority_error_distance, length_error_rate=args.length_error_rate,
        length_error_distance=args.length_error_distance, classifier_latency=args.classifier_latency,
        classifier_batch_size=args.classifier_batch_size, aging=args.aging, aging_bound=args.aging_bound,
        aging_mode=args.aging_mode, preemption=not args.no_preemption, preemption_min_wait=args.preemption_min_wait,
        within_class_preemption=args.within_class_preemption, within_class_min_gain=args.within_class_min_gain,
        within_class_min_run=args.within_class_min_run, prefill_cost=args.prefill_cost,
        prefill_token_weight=args.prefill_token_weight, seed=seed, trace=args.trace,
        confusion=load_confusion(args.confusion) if args.confusion else None)
    for key, value in overrides.items():
        setattr(params, key, value)
    params.validate()
    return params


def parse_seeds(text: str) -> list[int]:
    """'0-9' or '0,3,5' or '7'."""
    try:
        if "-" in text.strip().lstrip("-"):
            start, end = text.split("-", 1)
            seeds = list(range(int(start), int(end) + 1))
        else:
            seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must look like 0-9 or 0,1,2; got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"empty seed range {text!r}")
    return seeds


POLICY_CHOICES = POLICIES
