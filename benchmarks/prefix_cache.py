"""Time to first token with and without the engine's prefix cache, on prompts that share their system prompt and
protocol card (the usual case: every caller whose report selects the same card).

    .venv/bin/python benchmarks/prefix_cache.py [--requests 12] [--new-tokens 16] [--rounds 1] [--interval 0]
                                                [--threads N] [--json var/bench-prefix-cache.json]

Loads the packaged model (`smollm2`) on CPU once and runs the same workload on fresh engines, cache off and on
(`--rounds` times each, in the order off on on off ...), and beside each cache-off round the same reports without
a card in the prompt and without the cache (the prompt before grounding): `--requests` reports, each grounded in one made-up card
(build_prompt_ids(..., cards=[CARD]), ~330 shared tokens), each answering `--new-tokens` tokens, arriving when the
previous one has its first token (so each TTFT is its own prefill beside the others' decoding), or with
`--interval` every that many seconds. TTFT is the time from a request's arrival (when it was due, even if a step
was running) to the end of the step that returns its first token. A third mode, cache on and warmed, first
prefills the card's shared prefix alone (Engine.warm_prefix), as the worker does for every card while idle. A
warm-up request with an unrelated prompt runs first on each engine, so neither mode pays for cold kernels. Prints a table (TTFT pooled over the rounds, CPU
seconds of this process, which the other load on a shared machine disturbs less than wall time), writes JSON.
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

CARD = {  # made up for the benchmark: long enough that system prompt + card is ~300 tokens
    "id": "bench-cardiac-arrest",
    "title": "Unconscious, not breathing normally (suspected cardiac arrest)",
    "steps": [
        "Tell the caller an ambulance is on its way and to stay on the line with you.",
        "Ask the caller to put the phone on speaker and kneel beside the patient's chest.",
        "Check once more for normal breathing for no longer than ten seconds; gasping is not normal breathing.",
        "Lay the patient flat on their back on a firm surface, and move any pillows away from the head.",
        "Place the heel of one hand in the centre of the chest, the other hand on top, fingers interlocked.",
        "Push hard and fast, at least five centimetres deep, about two pushes every second; count out loud.",
        "Let the chest come all the way back up after each push and do not stop between pushes.",
        "If someone else is there, send them to fetch the nearest defibrillator and to open the front door.",
        "When the defibrillator arrives, switch it on and follow its spoken instructions exactly.",
        "Keep pushing until the crew takes over, the patient starts breathing normally, or you are too tired.",
    ],
}

REPORTS = [
    ("my dad just collapsed in the kitchen and he isn't breathing", "14 Elm Street"),
    ("she fell down at the bus stop, no pulse I think, lips are blue", "Main Road bus stop"),
    ("my husband was mowing the lawn and dropped, he's making gasping sounds", "3 Garden Close"),
    ("a man collapsed in the supermarket aisle, someone says he's not breathing", "FreshMart, High St"),
    ("my grandmother won't wake up and her chest isn't moving", "Flat 2, 77 Station Road"),
    ("a runner just went down in the park and isn't responding at all", "Riverside Park gate"),
    ("my colleague slumped over his desk, he's grey and not breathing", "Office tower, 9th floor"),
    ("my friend collapsed at the gym after a sprint, eyes open but not breathing", "City Gym"),
    ("the old man next door is on the floor, I can't feel him breathe", "21 Oak Avenue"),
    ("my wife had chest pain and now she's unconscious and not breathing", "5 Hill Lane"),
    ("a woman fainted on the train platform and isn't breathing properly", "Central Station, platform 4"),
    ("my brother collapsed playing football, he's twitching then stopped breathing", "Northfield pitches"),
    ("a cyclist collapsed at the lights, bystanders say no pulse", "Bridge Street crossing"),
    ("my uncle collapsed at dinner and his breathing stopped", "8 Church Row"),
    ("a teenager collapsed at school sports day, the teacher says he's not breathing", "Westfield School"),
    ("my mum collapsed in the garden and she's not moving or breathing", "2 Meadow Way"),
]


def percentile(values, q):
    from scheduler.metrics import percentile as pct

    return pct(sorted(values), q)


def due(i, prev_first, start, interval):
    """When request i arrives: `interval` s after the start per request, or (interval 0, closed loop) as soon as
    request i-1 has its first token; None while that is not yet known."""
    if interval > 0:
        return start + i * interval
    return start if i == 0 else prev_first


def run_mode(model, tokenizer, prompts, enable, args, warm_prefix=None):
    """One fresh engine, a warm-up request, then the workload; TTFT per request and the prefill work done.
    `warm_prefix`: token ids prefilled into the cache before the workload, as the worker does for every card
    while it is idle (InferenceService._warm_next_card)."""
    from inference_worker.engine import Engine, EngineConfig

    config = EngineConfig(max_batch_size=16, token_budget=2048, kv_block_size=16, kv_device_blocks=512,
                          max_model_len=1024, enable_prefix_caching=enable, use_cuda_graphs=False)  # no EOS: equal work
    engine = Engine(model, config, device="cpu")
    warm = tokenizer("Warm-up: the quick brown fox jumps over the lazy dog. " * 4)["input_ids"]
    engine.add_request("warm-up", warm, urgency=2, predicted_output_tokens=4, max_new_tokens=4)
    while engine.has_work():
        engine.step()
    if warm_prefix is not None:
        engine.warm_prefix(warm_prefix)
    base = engine.stats()
    arrival, first = {}, {}
    start, cpu_start = engine.clock(), time.process_time()
    n = len(prompts)
    while len(arrival) < n or engine.has_work():
        while len(arrival) < n:
            i = len(arrival)
            when = due(i, first.get(i - 1), start, args.interval)
            if when is None or when > engine.clock():
                break
            arrival[i] = when  # it was due then, even if a step was running
            engine.add_request(i, prompts[i], urgency=1, predicted_output_tokens=args.new_tokens,
                               max_new_tokens=args.new_tokens, arrival_time=when)
        if not engine.has_work():
            time.sleep(max(0.0, due(len(arrival), first.get(len(arrival) - 1), start, args.interval)
                           - engine.clock()))
            continue
        outputs = engine.step()
        ended = engine.clock()
        for o in outputs:
            if o.request_id not in first and o.new_token_ids:
                first[o.request_id] = ended
    ttft = [first[i] - arrival[i] for i in range(n)]
    stats = engine.stats()
    return {
        "ttft_s": ttft,
        "wall_s": engine.clock() - start,
        "cpu_s": time.process_time() - cpu_start,
        "prefill_tokens": stats["prefill_tokens"] - base["prefill_tokens"],
        "prefix_cache_hit_tokens": stats["prefix_cache_hit_tokens"] - base["prefix_cache_hit_tokens"],
        "prefix_cache_queried_tokens": stats["prefix_cache_queried_tokens"] - base["prefix_cache_queried_tokens"],
    }


def pooled(runs, enable):
    """The runs of one mode together: TTFTs of every request of every round."""
    ttft = [t for r in runs for t in r["ttft_s"]]
    total = {key: sum(r[key] for r in runs) for key in ("wall_s", "cpu_s", "prefill_tokens",
                                                       "prefix_cache_hit_tokens", "prefix_cache_queried_tokens")}
    return dict(prefix_caching=enable, rounds=len(runs), ttft_s=ttft, mean_s=sum(ttft) / len(ttft),
                p50_s=percentile(ttft, 50), p95_s=percentile(ttft, 95), **total)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--interval", type=float, default=0.0,
                        help="seconds between arrivals; 0: each arrives when the previous has its first token")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of each mode, in the order off on on off ... (drift cancels out)")
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", default=str(ROOT / "var" / "bench-prefix-cache.json"))
    args = parser.parse_args()
    if not 1 <= args.requests <= len(REPORTS) or args.interval < 0 or not 1 <= args.new_tokens <= 256 \
            or not 1 <= args.rounds <= 5:
        parser.error(f"--requests must be 1..{len(REPORTS)}, --interval >= 0, --new-tokens 1..256, --rounds 1..5")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from inference_worker.model_loading import load_model
    from inference_worker.prompting import build_prompt_ids, shared_prefix_ids, system_text

    model, tokenizer = load_model(args.model, device="cpu")
    prompts = [build_prompt_ids(tokenizer, text, location, cards=[CARD]) for text, location in REPORTS[:args.requests]]
    shared = 0
    while all(len(p) > shared and p[shared] == prompts[0][shared] for p in prompts):
        shared += 1
    plain = [build_prompt_ids(tokenizer, text, location) for text, location in REPORTS[:args.requests]]
    card_prefix = shared_prefix_ids(tokenizer, [CARD])
    runs = {False: [], True: []}
    ungrounded, warmed = [], []
    order = [False, True, True, False] * args.rounds
    with torch.inference_mode():
        for enable in order[:2 * args.rounds]:
            runs[enable].append(run_mode(model, tokenizer, prompts, enable, args))
            if enable:  # the same, with the card's prefix warmed before the first request, as the worker does
                warmed.append(run_mode(model, tokenizer, prompts, True, args, warm_prefix=card_prefix))
            else:  # today's baseline beside each cache-off round: no card in the prompt, no cache
                ungrounded.append(run_mode(model, tokenizer, plain, False, args))
    off, on = pooled(runs[False], False), pooled(runs[True], True)
    on_warmed = pooled(warmed, True)
    baseline = pooled(ungrounded, False)
    report = {
        "model": args.model, "device": "cpu", "torch_threads": torch.get_num_threads(), "requests": args.requests,
        "interval_s": args.interval, "new_tokens": args.new_tokens, "rounds": args.rounds,
        "prompt_tokens": [len(p) for p in prompts], "shared_prefix_tokens": shared,
        "system_text_chars": len(system_text([CARD])),
        "off": off, "on": on, "on_warmed": on_warmed, "ungrounded_off": baseline,
        "warmed_prefix_tokens": len(card_prefix),
        "ungrounded_prompt_tokens": [len(p) for p in plain],
        "ttft_ratio_ungrounded_off_to_grounded_on_mean": baseline["mean_s"] / on["mean_s"],
        "ttft_ratio_ungrounded_off_to_grounded_on_warmed_mean": baseline["mean_s"] / on_warmed["mean_s"],
        "ttft_ratio_mean": off["mean_s"] / on["mean_s"], "ttft_ratio_p50": off["p50_s"] / on["p50_s"],
        "ttft_ratio_p95": off["p95_s"] / on["p95_s"],
    }
    arrivals = f"every {args.interval:g} s" if args.interval > 0 else "each at the previous one's first token"
    print(f"{args.model} on CPU ({torch.get_num_threads()} threads): {args.requests} requests {arrivals}, "
          f"{args.rounds} round(s), prompts {min(report['prompt_tokens'])}-{max(report['prompt_tokens'])} tokens, "
          f"{shared} shared, {args.new_tokens} new tokens each")
    print(f"{'prefix cache':<13}{'mean TTFT':>11}{'p50':>9}{'p95':>9}{'prefilled':>11}{'hit/queried':>14}"
          f"{'CPU':>8}")
    for name, r in (("off", off), ("on", on), ("on, warmed", on_warmed), ("no card, off", baseline)):
        print(f"{name:<13}{r['mean_s'] * 1000:>9.0f}ms{r['p50_s'] * 1000:>7.0f}ms{r['p95_s'] * 1000:>7.0f}ms"
              f"{r['prefill_tokens']:>11}{r['prefix_cache_hit_tokens']:>7}/{r['prefix_cache_queried_tokens']:<6}"
              f"{r['cpu_s']:>7.1f}s")
    print(f"{'off / on':<13}{report['ttft_ratio_mean']:>10.2f}x{report['ttft_ratio_p50']:>8.2f}x"
          f"{report['ttft_ratio_p95']:>8.2f}x")
    print(f"grounded with the cache vs today's prompt without a card, no cache: the latter's mean TTFT is "
          f"{report['ttft_ratio_ungrounded_off_to_grounded_on_mean']:.2f}x the former's (>= 1: no worse); with the "
          f"card's prefix warmed first, as the worker does while idle: "
          f"{report['ttft_ratio_ungrounded_off_to_grounded_on_warmed_mean']:.2f}x")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
