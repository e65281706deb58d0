"""How long a level-0 answer takes on the CPU while 50 lower-urgency requests are being answered: the old
defaults (a batch of 64, 400-token answers, no smaller batch for urgent work) against the new CPU defaults
(inference_worker/build.py: CPU_DEFAULTS), in one run.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/level0_under_load.py --json var/level0_under_load.json

Each variant runs the real engine with the packaged SmolLM2-135M (fp32): 50 requests of urgency 2-4 (callers'
texts from the labelled training set, each prompt with its protocol cards, as the worker builds them) are
submitted and run for `--warm-up` seconds; then a level-0 request arrives and the engine steps on until its
answer is complete (all of its `max_answer_tokens`: EOS is ignored, the worst case). The figure is the time from
its arrival to its last token; a variant that runs past `--max-wait` seconds is reported as "> N s". A request
arrives between two steps here; in the worker it may also wait for the step in flight, so the table gives the
longest step before the arrival too. The issue's target: the level-0 answer complete within 30 s on 2 cores.

The old variant's KV pool holds what its 51 requests use rather than the old 64 x 4,096 positions (12 GB):
attention reads only a request's own context, so the timing is the same.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.cpu_batch import emergency_texts, model_threads, packaged_model_on_cpu  # noqa: E402

LOWER_LEVELS = (2, 3, 4)


def cards_for(level, index):
    """Two protocol cards for a request, as the worker passes them: one that suits the level, and the level's
    fallback (selection needs the classifier's models, which this benchmark leaves out)."""
    from triage_site.guidance.cards import FALLBACKS, load_cards

    cards = load_cards()
    suitable = [card for card in cards.values() if level in card.levels and card.id != FALLBACKS[level]]
    chosen = [suitable[index % len(suitable)], cards[FALLBACKS[level]]] if suitable else [cards[FALLBACKS[level]]]
    return tuple({"id": c.id, "title": c.title, "steps": list(c.steps)} for c in chosen)


def workload(tokenizer, count):
    """(urgency, prompt ids) for `count` lower-urgency requests, then the level-0 request."""
    from inference_worker.prompting import build_prompt_ids

    lower = []
    for i in range(count):
        level = LOWER_LEVELS[i % len(LOWER_LEVELS)]
        texts = emergency_texts({level})
        lower.append((level, build_prompt_ids(tokenizer, texts[(7 * i) % len(texts)], cards=cards_for(level, i))))
    urgent_text = emergency_texts({0})[3]
    return lower, (0, build_prompt_ids(tokenizer, urgent_text, cards=cards_for(0, 0)))


def variants(eos_token_ids):
    from inference_worker.build import CPU_DEFAULTS, engine_config
    from inference_worker.engine import EngineConfig

    new = engine_config("cpu", policy="semantic", eos_token_ids=eos_token_ids)
    no_shrink = engine_config("cpu", policy="semantic", eos_token_ids=eos_token_ids, urgent_batch_size=0)
    old = EngineConfig(policy="semantic", max_batch_size=64, max_model_len=4096, eos_token_ids=eos_token_ids)
    return [("old defaults: batch 64, 400 tokens", old, 400),
            (f"new, urgent batch off: batch {new.max_batch_size}, {CPU_DEFAULTS.max_answer_tokens} tokens",
             no_shrink, CPU_DEFAULTS.max_answer_tokens),
            (f"new defaults: batch {new.max_batch_size}, urgent batch {new.urgent_batch_size}, "
             f"{CPU_DEFAULTS.max_answer_tokens} tokens", new, CPU_DEFAULTS.max_answer_tokens)]


def run_variant(model, config, answer_tokens, lower, urgent, warm_up, max_wait):
    from dataclasses import replace

    from inference_worker.engine import Engine
    from scheduler import blocks_for

    if config.kv_device_blocks is None and config.kv_cache_max_mb is None:  # the old variant: see the docstring
        longest = max(len(p) for _, p in lower + [urgent]) + answer_tokens + 1
        config = replace(config, kv_device_blocks=(len(lower) + 1) * blocks_for(longest, config.kv_block_size))
    engine = Engine(model, config, device="cpu")
    for i, (level, prompt) in enumerate(lower):
        engine.add_request(f"low{i}", prompt, urgency=level, predicted_output_tokens=answer_tokens,
                           max_new_tokens=answer_tokens)
    started = time.perf_counter()
    longest_step = 0.0
    while time.perf_counter() - started < warm_up:
        step_started = time.perf_counter()
        engine.step()
        longest_step = max(longest_step, time.perf_counter() - step_started)
    lower_done = engine.stats()["finished"]
    running_at_arrival = engine.stats()["running"]
    arrived = time.perf_counter()
    engine.add_request("urgent", urgent[1], urgency=0, predicted_output_tokens=answer_tokens,
                       max_new_tokens=answer_tokens)
    first_token = done = None
    tokens = 0
    while done is None and time.perf_counter() - arrived < max_wait:
        for output in engine.step():
            if output.request_id == "urgent":
                tokens += len(output.new_token_ids)
                first_token = first_token or time.perf_counter()
                if output.finished:
                    done = time.perf_counter()
    waited = (done or time.perf_counter()) - arrived
    return {
        "max_batch_size": config.max_batch_size, "urgent_batch_size": config.urgent_batch_size,
        "token_budget": config.token_budget, "answer_tokens": answer_tokens,
        "kv_blocks": engine.sched.config.kv_device_blocks,
        "lower_requests": len(lower), "lower_finished_before_arrival": lower_done,
        "running_at_arrival": running_at_arrival, "longest_step_before_arrival_s": round(longest_step, 2),
        "level0_prompt_tokens": len(urgent[1]), "level0_tokens": tokens,
        "level0_first_token_s": round(first_token - arrived, 2) if first_token else None,
        "level0_complete_s": round(waited, 2) if done else None,
        "level0_complete_over_s": None if done else round(waited, 1),
    }


def complete_text(row):
    return f"{row['level0_complete_s']:.1f}" if row["level0_complete_s"] is not None \
        else f"> {row['level0_complete_over_s']:.0f}"


def print_table(rows, target):
    print(f"level-0 answer under load: {rows[0]['lower_requests']} lower-urgency requests, SmolLM2-135M fp32 on CPU")
    print(f"{'variant':<58} {'running':>7} {'first tok s':>11} {'tokens':>6} {'complete s':>10} {'step<=s':>7}")
    for row in rows:
        first = "-" if row["level0_first_token_s"] is None else f"{row['level0_first_token_s']:.1f}"
        print(f"{row['variant']:<58} {row['running_at_arrival']:>7} {first:>11} {row['level0_tokens']:>6} "
              f"{complete_text(row):>10} {row['longest_step_before_arrival_s']:>7}")
    print(f"target: complete within {target:.0f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lower", type=int, default=50, help="lower-urgency requests already submitted")
    parser.add_argument("--warm-up", type=float, default=20.0, help="seconds they run before the level-0 arrives")
    parser.add_argument("--max-wait", type=float, default=120.0, help="give up on a variant after this long")
    parser.add_argument("--only", default="", help="comma-separated variant numbers to run (1-based), default all")
    parser.add_argument("--target", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--json", default=str(ROOT / "var" / "level0_under_load.json"))
    args = parser.parse_args(argv)
    model, tokenizer = packaged_model_on_cpu(args.threads)
    lower, urgent = workload(tokenizer, args.lower)
    chosen = {int(n) for n in args.only.split(",") if n.strip()}
    rows = []
    for number, (name, config, answer_tokens) in enumerate(variants([]), start=1):  # EOS off: full-length answers
        if chosen and number not in chosen:
            continue
        row = {"variant": name}
        row.update(run_variant(model, config, answer_tokens, lower, urgent, args.warm_up, args.max_wait))
        rows.append(row)
        print(json.dumps(row), flush=True)
    print_table(rows, args.target)
    report = {"model": "smollm2", "dtype": "float32", "device": "cpu", "torch_threads": model_threads(),
              "cpu_count": os.cpu_count(), "warm_up_s": args.warm_up, "max_wait_s": args.max_wait,
              "target_s": args.target,
              "lower_prompt_tokens_mean": round(sum(len(p) for _, p in lower) / len(lower), 1), "rows": rows}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
