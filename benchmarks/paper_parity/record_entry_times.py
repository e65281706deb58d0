"""Run the paper's semantic scheduler (its `main/` folder, unchanged) and write the instant each request entered
its queue on its own simulated clock, as a trace our simulator replays.

Why: its arrivals are paced by `asyncio.sleep` on the wall clock, so its requests reach its queue over the first
~1.2 simulated seconds, not at the 0.00-0.19 s its generator drew. Its "waiting time" counts from that entry.
Replaying the drawn instants charges our scheduler for time its code never counted.

    python benchmarks/paper_parity/record_entry_times.py --paper-code CHECKOUT/main --out entered.jsonl \
        -- --user_request_gap 0.01 --max_concurrent_user_requests 50 --setting A100_4B
    python -m scheduler.simulate --policy semantic --trace entered.jsonl --batch-size 16 --classifier-latency 0

Needs the paper code's own dependencies (numpy, tqdm, async_timeout, config). Only two of its methods are
wrapped, to read its clock: the queue's per-iteration waiting-time update and its enqueue.
"""
import argparse
import json
import os
import runpy
import statistics
import sys
import tempfile


def run_recording(paper_main: str, paper_args: list[str]) -> tuple[dict, dict]:
    sys.path.insert(0, paper_main)
    import config  # the paper code's module of globals (PyPI `config` is only its namespace)
    import queue_management

    clock = {"now": 0.0}
    entered = {}
    queue_class = queue_management.PriorityQueue
    add_original, update_original = queue_class.add_unsorted_node, queue_class.update_waiting_time

    def add_unsorted_node(self, user_request):
        entered[user_request.user_request_id] = clock["now"]
        return add_original(self, user_request)

    def update_waiting_time(self, iteration_time):  # called once per iteration with that iteration's duration
        clock["now"] += iteration_time
        return update_original(self, iteration_time)

    queue_class.add_unsorted_node, queue_class.update_waiting_time = add_unsorted_node, update_waiting_time
    with tempfile.TemporaryDirectory() as scratch:  # it writes result files relative to the working directory
        cwd = os.getcwd()
        os.chdir(scratch)
        for folder in ("simulation/gap", "A100_4B_simulation/gap", "A100_7B_simulation/gap",
                       "A5000_4B_simulation/gap", "A5000_7B_simulation/gap"):
            os.makedirs(folder)
        sys.argv = [os.path.join(paper_main, "main.py"), *paper_args]
        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
        finally:
            os.chdir(cwd)
    return entered, config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paper-code", required=True, help="the main/ folder of a checkout of the paper's code")
    parser.add_argument("--out", required=True, help="JSON-lines trace to write")
    parser.add_argument("paper_args", nargs="*", help="arguments for its main.py, after --")
    args = parser.parse_args()
    entered, paper = run_recording(os.path.abspath(args.paper_code), args.paper_args)
    records = paper.record_requests
    with open(args.out, "w", encoding="utf-8") as out:
        for request_id in sorted(records):
            request = records[request_id]
            out.write(json.dumps({
                "arrival_time": entered[request_id], "urgency": paper.user_request_priority[request_id],
                "prompt_tokens": request.prompt_length, "output_tokens": request.output_length,
                "predicted_urgency": request.predicted_priority,
                "predicted_output_tokens": request.predicted_output_length}) + "\n")
    level0 = [r.waiting_time for r in records.values() if paper.user_request_priority[r.user_request_id] == 0]
    print(f"wrote {args.out}: {len(records)} requests, entered its queue from 0 to {max(entered.values()):.3f} s; "
          f"its urgency-0 mean time in the system, from entry: {statistics.mean(level0):.3f} s "
          f"(overall {statistics.mean(r.waiting_time for r in records.values()):.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
