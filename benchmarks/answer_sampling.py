"""Which sampling settings keep the packaged model's answers from degenerating: the table the
TRIAGE_ANSWER_* defaults (triage_site/settings.py) are read from.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/answer_sampling.py --prompts 12 --max-new-tokens 160

Why: SmolLM2-135M under plain greedy decoding often repeats a sentence or a numbered step until the token
limit. Each candidate setting answers the same short emergency reports (written here, prompted as the worker
prompts them) in one engine batch; the degeneration guard (inference_worker/guard.py) reads each answer as
it grows, as the worker does, and the table counts the answers it would withdraw and why, with how many
ended by themselves (EOS), how many repeat a 4-word phrase (rep4, short of the guard), the mean share of
distinct word pairs (dist2) and the mean length. Answers go to the JSON for reading.
"""
import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# (report, location): short, varied, as call-takers type them
REPORTS = [
    ("My husband collapsed in the kitchen and he is not breathing", "14 Baker Street, flat 2"),
    ("Child swallowed some of her grandmother's heart pills about ten minutes ago", "7 Elm Close"),
    ("Man fell off a ladder, hit his head, he is confused and bleeding from the ear", "Oak Lane farm, the barn"),
    ("My wife is having crushing chest pain going down her left arm and she is sweating", ""),
    ("Woman at the bus stop is shaking all over and foaming at the mouth", "Central Station, platform 4"),
    ("Deep cut on my hand from a kitchen knife, it won't stop bleeding", "22 Harbour Street"),
    ("My son was stung by a bee, his face is swelling and he is wheezing", "Riverside Park, near the cafe"),
    ("Elderly father slipped in the bath, cannot get up, hip hurts a lot", "3 Mill Road"),
    ("Pregnant, 38 weeks, waters broke and contractions are two minutes apart", ""),
    ("Friend took too many pills at a party and now we can't wake him", "The Anchor pub, back room"),
    ("Car crash, driver trapped, smells of petrol, he says his neck hurts", "M6 northbound, junction 19"),
    ("My mother's face is drooping on one side and her speech is slurred", "58 Queens Avenue"),
]

# name -> SamplingParams fields
CANDIDATES = {
    "greedy": {},
    "rp1.1": dict(repetition_penalty=1.1),
    "rp1.2": dict(repetition_penalty=1.2),
    "rp1.3": dict(repetition_penalty=1.3),
    "ngram3": dict(no_repeat_ngram_size=3),
    "ngram4": dict(no_repeat_ngram_size=4),
    "rp1.2+ngram4": dict(repetition_penalty=1.2, no_repeat_ngram_size=4),
    "t0.3/p0.9+rp1.2": dict(temperature=0.3, top_p=0.9, repetition_penalty=1.2, seed=0),
    "t0.3/p0.9+rp1.2+ngram4": dict(temperature=0.3, top_p=0.9, repetition_penalty=1.2, no_repeat_ngram_size=4,
                                   seed=0),
}


def run_setting(model, tokenizer, prompts, reports, fields, max_new_tokens):
    """Answer every prompt in one batch under one setting; the guard reads each answer token by token."""
    from inference_worker.engine import Engine, EngineConfig, SamplingParams
    from inference_worker.guard import DegenerationGuard
    from inference_worker.prompting import AnswerText
    from scheduler import blocks_for

    batch = len(prompts)
    longest = max(len(p) for p in prompts) + max_new_tokens + 1
    config = EngineConfig(max_batch_size=batch, token_budget=max(2048, batch), kv_block_size=16,
                          kv_device_blocks=batch * blocks_for(longest, 16) + batch,
                          eos_token_ids=[tokenizer.eos_token_id], max_model_len=longest + 16)
    engine = Engine(model, config, device="cpu")
    sampling = SamplingParams(**fields)
    answers = {i: AnswerText(tokenizer) for i in range(batch)}
    guards = {i: DegenerationGuard(report, location) for i, (report, location) in enumerate(reports)}
    results = {}
    for i, prompt in enumerate(prompts):
        engine.add_request(i, prompt, urgency=2, predicted_output_tokens=max_new_tokens,
                           max_new_tokens=max_new_tokens, sampling=sampling)
    started = time.perf_counter()
    while engine.has_work():
        for output in engine.step():
            i = output.request_id
            answers[i].extend(output.new_token_ids)
            text = answers[i].text
            reason = guards[i].check_finished(text) if output.finished else guards[i].check(text)
            if reason or output.finished:
                engine.cancel(i)
                results[i] = dict(report=reports[i][0], answer=text.strip(), tokens=len(answers[i].token_ids),
                                  withdrawn=reason, finish=output.finish_reason or "withdrawn")
    elapsed = time.perf_counter() - started
    rows = [results[i] for i in range(batch)]
    return rows, sum(r["tokens"] for r in rows) / elapsed


def repeats_a_phrase(answer, n=4):
    """Short of the guard: some phrase of n words comes back at least once."""
    from inference_worker.guard import words

    seen = Counter(zip(*(words(answer)[i:] for i in range(n))))
    return any(count >= 2 for count in seen.values())


def distinct_pairs(answer):
    """Distinct word pairs / word pairs: 1.0 never repeats itself, looping answers fall towards 0."""
    from inference_worker.guard import words

    pairs = list(zip(words(answer), words(answer)[1:]))
    return len(set(pairs)) / len(pairs) if pairs else 1.0


def summarise(name, fields, rows, tokens_per_s):
    reasons = Counter(r["withdrawn"] for r in rows if r["withdrawn"])
    kept = [r for r in rows if not r["withdrawn"]]
    return {
        "setting": name, "fields": fields, "answers": len(rows),
        "withdrawn": sum(reasons.values()), "reasons": dict(reasons),
        "eos": sum(r["finish"] == "eos" for r in kept),
        "repeated_phrase": sum(repeats_a_phrase(r["answer"]) for r in rows),
        "distinct_pairs": round(sum(distinct_pairs(r["answer"]) for r in rows) / len(rows), 2),
        "mean_tokens": round(sum(r["tokens"] for r in rows) / len(rows), 1),
        "tokens_per_s": round(tokens_per_s, 1),
    }


def print_table(summaries):
    print(f"{'setting':<24} {'withdrawn':>9} {'eos':>4} {'rep4':>4} {'dist2':>5} {'mean tok':>8} {'tok/s':>6}  reasons")
    for s in summaries:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(s["reasons"].items())) or "-"
        print(f"{s['setting']:<24} {s['withdrawn']:>5}/{s['answers']:<3} {s['eos']:>4} {s['repeated_phrase']:>4} "
              f"{s['distinct_pairs']:>5} {s['mean_tokens']:>8} "
              f"{s['tokens_per_s']:>6}  {reasons}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=len(REPORTS), help="how many of the reports (max %(default)s)")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--settings", nargs="*", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=str(ROOT / "var" / "answer_sampling.json"))
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)  # the machine is shared: more threads than free cores only spin
    from inference_worker.model_loading import load_model
    from inference_worker.prompting import build_prompt_ids

    model, tokenizer = load_model(args.model, device="cpu", dtype=torch.float32)
    reports = REPORTS[:args.prompts]
    prompts = [build_prompt_ids(tokenizer, report, location) for report, location in reports]
    summaries, answers = [], {}
    for name in args.settings:
        rows, tokens_per_s = run_setting(model, tokenizer, prompts, reports, CANDIDATES[name], args.max_new_tokens)
        summaries.append(summarise(name, CANDIDATES[name], rows, tokens_per_s))
        answers[name] = rows
        print(f"{name}: {summaries[-1]}", flush=True)
    print()
    print_table(summaries)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"model": args.model, "max_new_tokens": args.max_new_tokens,
                                "summaries": summaries, "answers": answers}, indent=1))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
