"""CPU latency of the urgency classifier, per request, in batches as the Celery task sends them.

    .venv/bin/python benchmarks/classifier_latency.py --batch 8 --rounds 20 --json out.json

Classifies batches of `--batch` requests drawn in a fixed order from the independent evaluation set
(its texts only, no labels) with `classify_batch`, after a warm-up, and reports the time per request
(batch time / batch size): p50, p95 and mean, and the same for one request at a time, measured in the
same run as the baseline. Prints a table, writes JSON. The issue's target: p50 at most 50 ms a request in
a batch of 8 on 2 cores.

It also times what the Celery task does with each batch, urgency and protocol cards, twice: with the clauses
encoded once for both (`encoder.reusing_embeddings`, as the task does) and, as the baseline, encoded again for
the cards (as before 2026-12-04).
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triage_site.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def per_request_ms(classify_batch, texts, batch):
    timings = []
    for start in range(0, len(texts) - batch + 1, batch):
        chunk = texts[start:start + batch]
        began = time.perf_counter()
        classify_batch(chunk)
        timings.append((time.perf_counter() - began) * 1000 / batch)
    return timings


def summary(timings):
    from scheduler.metrics import percentile

    ordered = sorted(timings)
    return {"p50": percentile(ordered, 50), "p95": percentile(ordered, 95),
            "mean": sum(ordered) / len(ordered), "batches": len(ordered)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=20, help="batches measured")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()
    if not 1 <= args.batch <= 64 or not 1 <= args.rounds <= 200:
        parser.error("--batch must be 1..64 and --rounds 1..200")
    import django

    django.setup()
    import torch

    from triage_site.classification import classifier, encoder, head
    from triage_site.guidance import selection

    def cards_again(chunk):
        selection.select_for_classifications(chunk, classifier.classify_batch(chunk))

    def cards_reusing(chunk):
        with encoder.reusing_embeddings():
            cards_again(chunk)

    texts = [row["text"] for row in head.read_jsonl(head.INDEPENDENT_PATH)]
    classifier.classify_batch(texts[:args.batch])  # warm-up: loading is not request latency
    batched = summary(per_request_ms(classifier.classify_batch, texts[:args.batch * args.rounds], args.batch))
    alone = summary(per_request_ms(classifier.classify_batch, texts[:args.rounds], 1))
    measured = texts[:args.batch * args.rounds]
    task_baseline = summary(per_request_ms(cards_again, measured, args.batch))
    task = summary(per_request_ms(cards_reusing, measured, args.batch))
    result = {"batch": args.batch, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
              "classifier": classifier.classify(texts[0]).classifier_name,
              "per_request_ms_in_batch": batched, "per_request_ms_alone": alone,
              "task_per_request_ms_clauses_encoded_twice": task_baseline,
              "task_per_request_ms_clauses_encoded_once": task,
              "task_mean_ratio": task["mean"] / task_baseline["mean"]}
    print(f"{'mode':<44} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}")
    for name, figures in ((f"urgency, batch of {args.batch}", batched), ("urgency, one at a time", alone),
                          (f"task (urgency + cards), clauses encoded twice", task_baseline),
                          (f"task (urgency + cards), clauses encoded once", task)):
        print(f"{name:<44} {figures['p50']:>8.1f} {figures['p95']:>8.1f} {figures['mean']:>8.1f}")
    print(f"task, mean per request: x{result['task_mean_ratio']:.2f} of the baseline")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
