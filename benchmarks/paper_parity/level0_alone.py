"""How fast can the seed's own urgency-0 requests finish under our cost model, whatever the policy? (issue 17)

    .venv/bin/python benchmarks/paper_parity/level0_alone.py --json var/level0_alone.json

The paper's code reaches about 8.5 s mean time in the system at urgency 0 on its headline requests
(`headline_requests.jsonl`, batch 16); we reach 9.55 s. This replays only those 115 urgency-0 requests, with
nothing else on the machine, so no other class can hold a slot:
- `simulator`: our semantic scheduler in `scheduler.simulate`, with the lengths its predictor gave and with the
  true lengths, with and without shortest-remaining preemption inside the class;
- `shortest first, by hand`: a few lines of step arithmetic outside the simulator, the true shortest job first
  into 16 slots, each admission paying its prefill in the step it joins (what our cost model charges);
- `lower bound`: no schedule of these requests can have a smaller mean completion time under our charges. Time
  before the k-th completion holds at least that request's and the k-1 earlier ones' prefills (at least the k
  smallest) plus their decode steps, and the decode steps alone are a schedule on 16 slots, which shortest
  first minimises (P||sum C). Both parts are relaxed separately, so the bound is loose.
Prints a table, writes JSON."""
import argparse
import heapq
import json
import sys
import tempfile
from dataclasses import replace
from statistics import fmean as mean
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from scheduler.costmodel import SETTINGS  # noqa: E402
from scheduler.simulator import SimulationParams, run_simulation  # noqa: E402
from scheduler.workload import load_trace, write_trace  # noqa: E402

TRACE = Path(__file__).with_name("headline_requests.jsonl")


def lower_bound(requests, model, slots):
    """Mean completion time no schedule beats (all requests present at 0, see the module docstring)."""
    prefills = sorted(model.prefill(r.prompt_tokens) for r in requests)
    prefill_part = mean([sum(prefills[:k + 1]) for k in range(len(prefills))])
    finish = [0.0] * slots
    decode_ends = []
    for steps in sorted(max(0, r.output_tokens - 1) for r in requests):  # the first token comes out of the prefill
        start = heapq.heappop(finish)
        decode_ends.append(start + steps * model.c2d)
        heapq.heappush(finish, decode_ends[-1])
    return prefill_part + mean(decode_ends)


def shortest_first_by_hand(requests, model, slots):
    """True shortest first; admissions pay their prefill in the step they join; decode steps cost decode_step."""
    queue = sorted(requests, key=lambda r: r.output_tokens)
    running, now, completions = [], 0.0, []
    while queue or running:
        prefill = 0.0
        while len(running) < slots and queue:
            request = queue.pop(0)
            prefill += model.prefill(request.prompt_tokens)
            running.append([request, request.output_tokens - 1])
        decoding = [entry for entry in running if entry[1] > 0]
        context = sum(entry[0].prompt_tokens + entry[0].output_tokens - entry[1] for entry in decoding)
        now += prefill + (model.decode_step(context) if decoding else 0.0)
        for entry in decoding:
            entry[1] -= 1
        completions += [now for entry in running if entry[1] <= 0]
        running = [entry for entry in running if entry[1] > 0]
    return mean(completions)


def simulated(trace_path, batch_size, within_class):
    params = SimulationParams(policy="semantic", trace=str(trace_path), batch_size=batch_size, classifier_latency=0.0,
                              within_class_preemption=within_class, within_class_min_gain=0, within_class_min_run=0,
                              record_requests=False)
    return run_simulation(params).per_class["0"]["e2e"]["mean"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trace", default=str(TRACE))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--json", default=str(ROOT / "var" / "level0_alone.json"))
    args = parser.parse_args(argv)
    model = SETTINGS["A100_4B"]
    level0 = [r for r in load_trace(args.trace) if r.urgency == 0]
    if not level0:
        parser.error(f"{args.trace} has no urgency-0 request")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        predicted, true = Path(tmp, "predicted.jsonl"), Path(tmp, "true.jsonl")
        write_trace(level0, str(predicted))
        write_trace([replace(r, predicted_output_tokens=r.output_tokens) for r in level0], str(true))
        for lengths, path in (("predicted", predicted), ("true", true)):
            for within_class in (False, True):
                name = f"simulator, {lengths} lengths{', within-class preemption' if within_class else ''}"
                rows.append((name, simulated(path, args.batch_size, within_class)))
    rows.append(("shortest first, by hand, true lengths", shortest_first_by_hand(level0, model, args.batch_size)))
    rows.append(("lower bound, any schedule", lower_bound(level0, model, args.batch_size)))
    print(f"{len(level0)} urgency-0 requests of {args.trace}, alone, batch {args.batch_size}, A100_4B, our charges "
          "(prefill chunks summed); mean end-to-end seconds")
    for name, value in rows:
        print(f"{name:<58} {value:7.3f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"trace": args.trace, "requests": len(level0), "batch_size": args.batch_size,
                                           "mean_e2e_s": dict(rows)}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
