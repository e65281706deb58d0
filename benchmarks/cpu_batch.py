"""Decode speed of the packaged model on the CPU at batch sizes 1, 2, 4, 8, 16: the table the CPU defaults
(inference_worker/build.py: CPU_MAX_BATCH_SIZE, CPU_URGENT_BATCH_SIZE) are read from.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/cpu_batch.py --new-tokens 32 --json var/cpu_batch.json

Why: on a CPU decoding is compute-bound. A bigger batch raises the aggregate tokens/s only until the cores are
busy; past that it mostly slows every answer down, which is what a dispatcher waiting for one answer sees.
Each batch size runs the real engine (SmolLM2-135M, fp32) on `b` realistic emergency prompts, each decoding
`--new-tokens` tokens (EOS ignored, so all run the same length), and times the decode steps after every
prompt is prefilled: aggregate tokens/s, per-request tokens/s, and the step time. `--repeats` runs the whole
sweep again, interleaved, and keeps each size's fastest run (the machine is shared, so timings are noisy).
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

DATASET = ROOT / "data" / "classifier" / "train.jsonl"


def emergency_texts(levels=None):
    """Caller texts from the labelled training set (never the independent evaluation set)."""
    rows = [json.loads(line) for line in DATASET.read_text().splitlines() if line.strip()]
    return [row["text"] for row in rows if levels is None or row["label"] in levels]


def prompt_ids(tokenizer, count, offset=0, levels=None):
    from inference_worker.prompting import build_prompt_ids

    texts = emergency_texts(levels)
    return [build_prompt_ids(tokenizer, texts[(offset + 37 * i) % len(texts)]) for i in range(count)]


def decode_run(model, prompts, new_tokens):
    """One engine run of len(prompts) requests at a batch of that size; returns its decode timings."""
    from inference_worker.engine import Engine, EngineConfig
    from scheduler import blocks_for

    batch = len(prompts)
    longest = max(len(p) for p in prompts) + new_tokens + 1
    config = EngineConfig(max_batch_size=batch, token_budget=max(2048, batch), kv_block_size=16,
                          kv_device_blocks=batch * blocks_for(longest, 16) + batch, eos_token_ids=[])
    engine = Engine(model, config, device="cpu")
    for i, prompt in enumerate(prompts):
        engine.add_request(i, prompt, urgency=2, predicted_output_tokens=new_tokens, max_new_tokens=new_tokens)
    started = time.perf_counter()
    produced = {}
    decode_started = None
    decode_steps = 0
    while engine.has_work():
        if decode_started is None and len(produced) == batch:
            decode_started = time.perf_counter()
        outputs = engine.step()
        if decode_started is not None:
            decode_steps += 1
        for output in outputs:
            produced[output.request_id] = produced.get(output.request_id, 0) + len(output.new_token_ids)
    ended = time.perf_counter()
    decode_s = ended - decode_started
    decode_tokens = batch * (new_tokens - 1)
    return {
        "batch": batch,
        "prompt_tokens_mean": round(sum(len(p) for p in prompts) / batch, 1),
        "prefill_s": round(decode_started - started, 3),
        "decode_s": round(decode_s, 3),
        "step_ms": round(1000 * decode_s / decode_steps, 1),
        "aggregate_tokens_per_s": round(decode_tokens / decode_s, 2),
        "per_request_tokens_per_s": round((new_tokens - 1) / decode_s, 2),
    }


def sweep(model, tokenizer, batch_sizes, new_tokens, repeats):
    best = {}
    decode_run(model, prompt_ids(tokenizer, 2), 4)  # warm-up: first-call allocations and lazy imports
    for _ in range(repeats):
        for batch in batch_sizes:
            row = decode_run(model, prompt_ids(tokenizer, batch), new_tokens)
            print(json.dumps(row), flush=True)
            if batch not in best or row["decode_s"] < best[batch]["decode_s"]:
                best[batch] = row
    rows = [best[b] for b in batch_sizes]
    base = rows[0]["per_request_tokens_per_s"]
    for row in rows:
        row["per_request_vs_batch_1"] = round(row["per_request_tokens_per_s"] / base, 2)
    return rows


def print_table(rows, new_tokens):
    print(f"decode of {new_tokens} tokens per request, SmolLM2-135M fp32 on CPU")
    print(f"{'batch':>5} {'prompt':>7} {'step ms':>8} {'aggregate tok/s':>16} {'per-request tok/s':>18} {'vs b=1':>7}")
    for row in rows:
        print(f"{row['batch']:>5} {row['prompt_tokens_mean']:>7} {row['step_ms']:>8} "
              f"{row['aggregate_tokens_per_s']:>16} {row['per_request_tokens_per_s']:>18} "
              f"{row['per_request_vs_batch_1']:>7}")


def packaged_model_on_cpu(threads=0):
    """SmolLM2 and its tokenizer on the CPU, with `threads` torch threads (0: torch's default)."""
    import torch

    from inference_worker.model_loading import load_model

    if threads:
        torch.set_num_threads(threads)
    return load_model("smollm2", device="cpu")


def model_threads():
    import torch

    return torch.get_num_threads()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", default="1,2,4,8,16")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--json", default=str(ROOT / "var" / "cpu_batch.json"))
    args = parser.parse_args(argv)
    model, tokenizer = packaged_model_on_cpu(args.threads)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    rows = sweep(model, tokenizer, batch_sizes, args.new_tokens, args.repeats)
    print_table(rows, args.new_tokens)
    report = {"model": "smollm2", "dtype": "float32", "device": "cpu", "torch_threads": model_threads(),
              "cpu_count": os.cpu_count(), "new_tokens": args.new_tokens, "repeats": args.repeats, "rows": rows}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
