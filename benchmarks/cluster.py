"""Benchmarks of several inference workers on one PostgreSQL queue (issue 15, docs/cluster.md).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python benchmarks/cluster.py --requests 96 --answer-tokens 128 --json var/cluster.json

1. Throughput: the same queue of classified requests served by 1, 2 and 3 worker processes (tiny model, one
   torch thread each), in one run: generated tokens/s and the ratio to one worker.
2. Level-0 time to first token under load: one worker with a backlog of B requests, then two workers with 2B
   (the same load per worker); a level-0 request arrives into each and its first token is timed.
3. Claim cost: one claim (SELECT ... FOR UPDATE SKIP LOCKED in cluster order) with 10,000 requests queued.
Each part runs on a database of its own; requests are written straight into it (no intake, no classifier), so the
figures are the workers' and the queue's alone. Prints a table and writes JSON.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.launch import Stack, wait_until  # noqa: E402

SEED_SCRIPT = """
from triage_site.intake.models import MedicalRequest, Status
MedicalRequest.objects.bulk_create([MedicalRequest(text=f"{text} {{n}}", status=Status.QUEUED, urgency={urgency},
    predicted_output_tokens={tokens}, queued_at=None) for n in range({count})], batch_size=2000)
"""


def seed(stack, count, urgency=4, tokens=64, text="Repeat prescription for my tablets, request"):
    stack.manage("shell", "-c", SEED_SCRIPT.format(text=text, urgency=urgency, tokens=tokens, count=count))


def query(stack, sql, *params):
    import psycopg

    with psycopg.connect(stack.env["DATABASE_URL"], autocommit=True) as connection:
        return connection.execute(sql, params).fetchall()


def count(stack, status):
    return query(stack, "SELECT count(*) FROM intake_medicalrequest WHERE status = %s", status)[0][0]


def done(stack):
    return count(stack, "done")


def start_workers(stack, workers):
    """Start them and wait until each has reported, so that every one sees the others before any work arrives."""
    for n in range(workers):
        stack.start_worker(f"w{n + 1}")
    wait_until(lambda: query(stack, "SELECT count(*) FROM dispatch_workerheartbeat")[0][0] == workers, 300,
               interval=0.1, message="not every worker reported")


def throughput(workers, requests, answer_tokens, tmp):
    stack = Stack(tmp / f"throughput-{workers}", extra_env={"TRIAGE_MAX_ANSWER_TOKENS": str(answer_tokens),
                                                            "TRIAGE_URGENT_BATCH_SIZE": "0"})
    try:
        start_workers(stack, workers)
        seed(stack, requests, tokens=answer_tokens)
        started = time.monotonic()  # the requests are in the queue (committed); the workers find them within 1 s
        wait_until(lambda: done(stack) == requests, 1800, interval=0.2, message="not all answered")
        elapsed = time.monotonic() - started
        tokens = query(stack, "SELECT sum(generated_tokens) FROM intake_medicalrequest")[0][0]
        return {"workers": workers, "requests": requests, "generated_tokens": tokens, "seconds": round(elapsed, 2),
                "tokens_per_s": round(tokens / elapsed, 1)}
    finally:
        stack.close()


def level0_first_token(workers, backlog_per_worker, answer_tokens, tmp):
    stack = Stack(tmp / f"level0-{workers}", extra_env={"TRIAGE_MAX_ANSWER_TOKENS": str(answer_tokens)})
    try:
        start_workers(stack, workers)
        seed(stack, backlog_per_worker * workers, tokens=answer_tokens)
        wait_until(lambda: count(stack, "running") >= workers, 300, interval=0.05, message="no load")
        time.sleep(2)  # steady load
        seed(stack, 1, urgency=0, tokens=answer_tokens, text="Not breathing, CPR in progress, request")
        arrived = time.monotonic()
        wait_until(lambda: query(stack, "SELECT count(*) FROM intake_medicalrequest WHERE urgency = 0 "
                                        "AND first_token_at IS NOT NULL")[0][0] == 1, 120, interval=0.02,
                   message="the level-0 request never started")
        return {"workers": workers, "backlog": backlog_per_worker * workers,
                "seconds_to_first_token": round(time.monotonic() - arrived, 2)}
    finally:
        stack.close()


CLAIM_SCRIPT = """
import time
from django.db import connection
from triage_site.intake import claims
# statistics for the planner, as autovacuum keeps them on a live database; right after a bulk insert of 10,000
# rows they are stale and the planner sorts the whole queue instead of reading the claim-order index
connection.cursor().execute("ANALYZE intake_medicalrequest")
times = []
for n in range({claims}):
    started = time.perf_counter()
    rows = claims.claim(f"bench{{n}}", limit=1, lease_seconds=30)
    times.append(time.perf_counter() - started)
    assert len(rows) == 1
times.sort()
print("CLAIM", times[len(times) // 2] * 1e3, times[int(len(times) * 0.95)] * 1e3)
"""


def claim_cost(queued, claims, tmp):
    stack = Stack(tmp / "claims")
    try:
        seed(stack, queued)
        out = stack.manage("shell", "-c", CLAIM_SCRIPT.format(claims=claims)).stdout
        p50, p95 = (float(x) for x in out.split("CLAIM", 1)[1].split())
        return {"queued": queued, "claims": claims, "p50_ms": round(p50, 2), "p95_ms": round(p95, 2)}
    finally:
        stack.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=96)
    parser.add_argument("--answer-tokens", type=int, default=128)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--backlog-per-worker", type=int, default=24)
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        parser.error("set DATABASE_URL and REDIS_URL: several workers need PostgreSQL (SQLite runs one)")
    results = {"cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        results["throughput"] = [throughput(n, args.requests, args.answer_tokens, tmp) for n in args.workers]
        results["level0"] = [level0_first_token(n, args.backlog_per_worker, 400, tmp) for n in (1, 2)]
        results["claim"] = claim_cost(args.queued, args.claims, tmp)
    base = results["throughput"][0]["tokens_per_s"]
    print("| workers | requests | tokens | seconds | tokens/s | x 1 worker |")
    print("|---|---|---|---|---|---|")
    for row in results["throughput"]:
        print(f"| {row['workers']} | {row['requests']} | {row['generated_tokens']} | {row['seconds']} | "
              f"{row['tokens_per_s']} | {row['tokens_per_s'] / base:.2f} |")
    one, two = results["level0"]
    print(f"level-0 first token under load: 1 worker with {one['backlog']} queued {one['seconds_to_first_token']} s; "
          f"2 workers with {two['backlog']} {two['seconds_to_first_token']} s "
          f"(x{two['seconds_to_first_token'] / max(one['seconds_to_first_token'], 1e-9):.2f})")
    claim = results["claim"]
    print(f"claim with {claim['queued']} queued: p50 {claim['p50_ms']} ms, p95 {claim['p95_ms']} ms "
          f"({claim['claims']} claims)")
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
