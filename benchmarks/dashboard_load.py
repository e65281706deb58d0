"""Load test of the live dispatcher board: many dashboards, a steady stream of new requests.

    .venv/bin/python benchmarks/dashboard_load.py --dashboards 200 --rate 20 --seconds 30

Starts `manage.py serve` (daphne + the embedded inference worker, tiny model, SQLite in a fresh
temporary directory) on 127.0.0.1, or with --full-stack daphne, Celery and the inference worker as
separate processes on PostgreSQL and Redis, or targets one given with --url (127.0.0.1/localhost only;
then pass the server's TRIAGE_VAR_DIR / DATABASE_URL in the environment so that the status-change
timestamps can be read afterwards). It signs in, opens N board websockets the way the browser page
does (`/ws/board/?delta=1`, spread over several client processes), submits requests through the
intake form at a fixed rate, and measures for every status change the database records (received:
created_at, queued: queued_at, running: first_token_at, done/failed: finished_at) the time until
each dashboard shows that status (or a later one) for that request. With --acknowledgers N (default 2),
N of the dashboards also acknowledge every level 0-1 alert they are shown, over the same socket, as a
dispatcher's board does; the acknowledgements stored and their times are reported too.
Prints a table, writes JSON.
Bounded: at most 1000 dashboards, 100 requests/s, 300 s.
"""
import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import secrets
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import launch, traffic  # noqa: E402  (after the path insert)
from scheduler.metrics import percentile  # noqa: E402

ORDER = ["received", "classifying", "queued", "running", "done", "failed"]
RANK = {status: index for index, status in enumerate(ORDER)}
RANK["failed"] = RANK["done"]


def server_env(var_dir, answer_tokens, classifier):
    """What the started server is told, in either mode."""
    env = {"TRIAGE_MAX_ANSWER_TOKENS": str(answer_tokens), "TRIAGE_LOG_LEVEL": "WARNING"}
    if classifier == "rules":
        env["TRIAGE_CLASSIFIER_ENCODER"] = str(var_dir / "no-encoder")  # model unavailable: rules only
    return env


def start_embedded(var_dir, answer_tokens, classifier):
    """`manage.py serve` on a fresh SQLite file, as the browser tests start it."""
    extra_env = {"TRIAGE_MODEL_CACHE": str(ROOT / "var" / "models"), "TRIAGE_INFERENCE_MODEL": "tiny",
                 **server_env(var_dir, answer_tokens, classifier)}
    return launch.embedded_server(var_dir, "bench", extra_env=extra_env, show_log=False)


def start_full_stack(var_dir, answer_tokens, classifier):
    """The processes of a real deployment, as the reliability tests start them."""
    if not launch.FULL_STACK:
        raise SystemExit("--full-stack needs DATABASE_URL and REDIS_URL")
    # Production settings as in docker-compose.yml (debug off: no per-query bookkeeping), plain HTTP on loopback.
    extra_env = {**server_env(var_dir, answer_tokens, classifier),
                 "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": secrets.token_hex(32), "DJANGO_SECURE_COOKIES": "0",
                 "DJANGO_SSL_REDIRECT": "0", "DJANGO_HSTS_SECONDS": "0"}
    stack = launch.Stack(var_dir, extra_env=extra_env)
    stack.start_all()
    return stack


def sign_in(base_url, username, password):
    import httpx

    client = httpx.Client(base_url=base_url, timeout=30)
    token = traffic.csrf_token(client.get("/login/").text)
    response = client.post("/login/", data={"username": username, "password": password,
                                            "csrfmiddlewaretoken": token, "next": "/dispatch/"})
    if response.status_code != 302:
        raise SystemExit(f"sign-in failed: {response.status_code}")
    return client


def warm_up(client, timeout=120):
    """One request through the whole path first: loads the classifier and the model."""
    token = traffic.csrf_token(client.get("/").text)
    response = client.post("/", data={"text": "warm-up: headache since this morning", "csrfmiddlewaretoken": token})
    location = response.headers.get("location", "")
    deadline = time.monotonic() + timeout
    while location and time.monotonic() < deadline:
        if 'data-status="done"' in client.get(location).text:
            return
        time.sleep(0.5)


# --- dashboards (client processes) -------------------------------------------------------------------

def run_dashboards(args):
    """One client process: `count` board websockets; returns first-seen times per (request, rank)."""
    ws_url, origin, cookie, count, stop_at, ready_queue, index, stop_value, acknowledgers = args

    def stopping():
        stop = stop_value.value
        return time.time() > stop_at or (stop > 0 and time.time() > stop)
    import websockets

    seen = {}  # (client, request_id, rank) -> time first shown
    stats = {"messages": 0, "bytes": 0, "connected": 0, "failed": 0, "refreshes": 0, "connect_s": [],
             "acknowledgements_sent": 0, "acknowledged": 0, "acknowledge_refused": 0}

    async def acknowledge(socket_, alert_ids, sent):
        for request_id in alert_ids:
            if request_id not in sent:
                sent.add(request_id)
                stats["acknowledgements_sent"] += 1
                await socket_.send(json.dumps({"type": "acknowledge", "request_id": request_id}))

    async def dashboard(number, acknowledger):
        started = time.monotonic()
        try:
            socket_ = await websockets.connect(ws_url, origin=origin, additional_headers={"Cookie": cookie},
                                               open_timeout=60, max_size=None, ping_interval=None)
        except Exception:
            stats["failed"] += 1
            return
        stats["connected"] += 1
        stats["connect_s"].append(time.monotonic() - started)
        rows, version, sent = {}, None, set()
        try:
            while not stopping():
                try:
                    raw = await asyncio.wait_for(socket_.recv(), timeout=0.5)
                except asyncio.TimeoutError:
                    continue
                now = time.time()
                stats["messages"] += 1
                stats["bytes"] += len(raw)
                if raw.startswith('{"type":"charts"') or raw.startswith('{"type":"worker"'):
                    continue  # charts and worker stats: not part of this measurement
                message = json.loads(raw)
                kind = message["type"]
                if kind == "result":
                    stats["acknowledged" if message["ok"] else "acknowledge_refused"] += 1
                    continue
                if kind == "board":
                    version = message["version"]
                    changed = message["board"]["open"] + message["board"]["finished"]
                    if acknowledger:
                        await acknowledge(socket_, [row["id"] for row in message["board"]["alerts"]], sent)
                elif kind == "board.delta":
                    if message["base"] != version:
                        stats["refreshes"] += 1
                        await socket_.send('{"type":"refresh"}')
                        continue
                    version = message["version"]
                    changed = message["upsert"]
                    if acknowledger and message.get("alerts"):
                        await acknowledge(socket_, message["alerts"], sent)
                else:
                    continue
                for row in changed:
                    rank = RANK[row["status"]]
                    if rows.get(row["id"], -1) < rank:
                        rows[row["id"]] = rank
                        for lower in range(rank + 1):
                            seen.setdefault((number, row["id"], lower), now)
        finally:
            await socket_.close()

    async def main():
        tasks = []
        for number in range(count):
            tasks.append(asyncio.ensure_future(dashboard(index * 100000 + number, number < acknowledgers)))
            await asyncio.sleep(0.01)
        while stats["connected"] + stats["failed"] < count:
            await asyncio.sleep(0.05)
        ready_queue.put(index)
        await asyncio.gather(*tasks)

    asyncio.run(main())
    return {"seen": [[c, r, k, t] for (c, r, k), t in seen.items()], "stats": stats}


def status_times(env, request_ids):
    """The database's timestamp of each status change of our requests."""
    os.environ.update({k: v for k, v in env.items() if k.startswith(("TRIAGE_", "DATABASE_", "DJANGO_"))})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triage_site.settings")
    import django

    django.setup()
    from triage_site.intake.models import MedicalRequest

    times = {}
    for pk, status, created, queued, first, finished in MedicalRequest.objects.filter(pk__in=request_ids).values_list(
            "pk", "status", "created_at", "queued_at", "first_token_at", "finished_at"):
        for name, moment in (("received", created), ("queued", queued), ("running", first)):
            if moment is not None:
                times[(pk, RANK[name])] = (name, moment.timestamp())
        if finished is not None and status in ("done", "failed"):
            times[(pk, RANK["done"])] = (status, finished.timestamp())
    return times


def measure(args, base_url, username, password, env):
    """Connects the dashboards, submits at the chosen rate, and reads back when each status changed."""
    client = sign_in(base_url, username, password)
    warm_up(client)
    cookie = f"sessionid={client.cookies['sessionid']}"
    host = urlparse(base_url).netloc
    ws_url, origin = f"ws://{host}/ws/board/?delta=1", f"http://{host}"

    procs = max(1, min(args.client_processes, args.dashboards))
    counts = [args.dashboards // procs + (1 if i < args.dashboards % procs else 0) for i in range(procs)]
    connect_budget = 60 + args.dashboards * 0.05
    stop_at = time.time() + connect_budget + args.seconds + args.drain
    manager = multiprocessing.Manager()
    ready = manager.Queue()
    pool = multiprocessing.Pool(procs)
    t_connect = time.monotonic()
    stop_value = manager.Value("d", 0.0)
    acknowledgers = [args.acknowledgers // procs + (1 if i < args.acknowledgers % procs else 0) for i in range(procs)]
    pending = pool.map_async(run_dashboards, [(ws_url, origin, cookie, n, stop_at, ready, i, stop_value, acknowledgers[i])
                                              for i, n in enumerate(counts)])
    for _ in range(procs):
        ready.get(timeout=connect_budget)
    connect_s = time.monotonic() - t_connect
    submit_started = time.time()
    load = asyncio.run(traffic.run(base_url, username, password, rate=args.rate, seconds=args.seconds))
    submit_s = time.time() - submit_started
    stop_value.value = time.time() + args.drain  # watch `drain` more seconds, then stop
    results = pending.get(timeout=max(stop_at - time.time(), 0) + 60)
    pool.close()
    times = status_times(env, load.accepted_ids)
    return results, load, times, connect_s, submit_s, stored_acknowledgements(load.accepted_ids)


def stored_acknowledgements(request_ids):
    """Alerts raised among our requests, and the acknowledgements stored for them (after status_times set up Django)."""
    from triage_site.intake.models import AlertAcknowledgement, MedicalRequest

    seconds = sorted(AlertAcknowledgement.objects.filter(request_id__in=request_ids)
                     .values_list("seconds_to_acknowledge", flat=True))
    alerts = MedicalRequest.objects.filter(pk__in=request_ids, alerted_at__isnull=False).count()
    return {"alerts_raised": alerts, "acknowledged": len(seconds),
            "seconds_to_acknowledge_p50": round(percentile(seconds, 50), 2) if seconds else None,
            "seconds_to_acknowledge_p95": round(percentile(seconds, 95), 2) if seconds else None}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dashboards", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="new requests per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to submit requests")
    parser.add_argument("--drain", type=float, default=5.0, help="seconds to keep watching after the last submit")
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--acknowledgers", type=int, default=2,
                        help="dashboards that also acknowledge every alert they are shown (0: none)")
    parser.add_argument("--answer-tokens", type=int, default=16, help="TRIAGE_MAX_ANSWER_TOKENS of the started server")
    parser.add_argument("--classifier", choices=["rules", "model"], default="rules",
                        help="rules: the started server runs the rules-only classifier (fast); model: MiniLM + head")
    parser.add_argument("--full-stack", action="store_true",
                        help="start daphne, Celery and the inference worker as separate processes on the PostgreSQL "
                             "and Redis of DATABASE_URL and REDIS_URL (a fresh database), instead of `manage.py serve`")
    parser.add_argument("--url", help="target a running server on 127.0.0.1 instead of starting one")
    parser.add_argument("--username", default="bench")
    parser.add_argument("--password", default=os.environ.get("TRIAGE_BENCH_PASSWORD", ""))
    parser.add_argument("--target-ms", type=float, default=250.0)
    parser.add_argument("--out", type=Path, default=ROOT / "test-output" / "dashboard_load.json")
    args = parser.parse_args()
    if not (1 <= args.dashboards <= 1000 and 0 < args.rate <= 100 and 0 < args.seconds <= 300):
        raise SystemExit("bounds: 1..1000 dashboards, rate up to 100/s, up to 300 s")

    with contextlib.ExitStack() as cleanup:
        if args.full_stack:
            stack = start_full_stack(Path(tempfile.mkdtemp(prefix="dashboard-load-")), args.answer_tokens,
                                     args.classifier)
            cleanup.callback(stack.close)
            base_url, username, password, env = (stack.base_url, "e2e", stack.password_file.read_text().strip(),
                                                 stack.env)
        elif args.url:
            if urlparse(args.url).hostname not in ("127.0.0.1", "localhost"):
                raise SystemExit("this benchmark only targets a server on 127.0.0.1")
            base_url, username, password, env = args.url.rstrip("/"), args.username, args.password, dict(os.environ)
            launch.wait_for_http(base_url, {}, timeout=120)
        else:
            var_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="dashboard-load-")))
            server = cleanup.enter_context(start_embedded(var_dir, args.answer_tokens, args.classifier))
            base_url, username, password, env = server["base_url"], server["username"], server["password"], server["env"]
        results, load, times, connect_s, submit_s, acknowledgements = measure(args, base_url, username, password, env)
    request_ids = load.accepted_ids

    latencies = {name: [] for name in ("received", "queued", "running", "done")}
    missed = {name: 0 for name in latencies}
    seen = {}
    for result in results:
        for client_id, pk, rank, at in result["seen"]:
            seen[(client_id, pk, rank)] = at
    client_ids = sorted({key[0] for key in seen})
    for (pk, rank), (name, changed_at) in times.items():
        bucket = "done" if name in ("done", "failed") else name
        for client_id in client_ids:
            at = seen.get((client_id, pk, rank))
            if at is None:
                missed[bucket] += 1
            else:
                latencies[bucket].append(max(at - changed_at, 0.0) * 1000)
    for values in latencies.values():
        values.sort()  # scheduler.metrics.percentile takes sorted lists
    everything = sorted(v for values in latencies.values() for v in values)
    stats = [result["stats"] for result in results]
    summary = {
        "date": date.today().isoformat(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "dashboards": args.dashboards, "connected": sum(s["connected"] for s in stats),
        "connect_failures": sum(s["failed"] for s in stats), "connect_all_s": round(connect_s, 2),
        "rate_target": args.rate, "submitted": len(load.submissions), "accepted": len(request_ids),
        "submit_rate_achieved": round(len(load.submissions) / submit_s, 2) if submit_s else None,
        "post_p95_ms": load.summary()["latency_ms"]["p95"],
        "finished": sum(1 for (_, rank) in times if rank == RANK["done"]),
        "messages_per_dashboard": round(sum(s["messages"] for s in stats) / max(len(client_ids), 1), 1),
        "mbytes_received": round(sum(s["bytes"] for s in stats) / 1e6, 1),
        "delta_gaps_refreshed": sum(s["refreshes"] for s in stats),
        "acknowledgers": args.acknowledgers,
        "acknowledgements": {**acknowledgements, **{key: sum(s[key] for s in stats) for key in (
            "acknowledgements_sent", "acknowledged", "acknowledge_refused")}},
        "status_changes": {name: {"count": len(values), "missed": missed[name],
                                  "p50_ms": round(percentile(values, 50), 1),
                                  "p95_ms": round(percentile(values, 95), 1),
                                  "p99_ms": round(percentile(values, 99), 1),
                                  "max_ms": round(max(values), 1) if values else 0}
                           for name, values in latencies.items()},
        "all": {"count": len(everything), "p50_ms": round(percentile(everything, 50), 1),
                "p95_ms": round(percentile(everything, 95), 1),
                "p99_ms": round(percentile(everything, 99), 1)},
        "target_p95_ms": args.target_ms,
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    summary["target_met"] = bool(everything) and summary["all"]["p95_ms"] <= args.target_ms

    print(f"\n{summary['connected']}/{args.dashboards} dashboards connected in {summary['connect_all_s']} s; "
          f"{summary['accepted']}/{summary['submitted']} requests accepted at {summary['submit_rate_achieved']}/s "
          f"(POST p95 {summary['post_p95_ms']} ms); {summary['finished']} finished")
    print(f"{'status change':<14}{'observations':>14}{'missed':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, row in summary["status_changes"].items():
        print(f"{name:<14}{row['count']:>14}{row['missed']:>8}{row['p50_ms']:>10}{row['p95_ms']:>10}"
              f"{row['p99_ms']:>10}{row['max_ms']:>10}")
    print(f"{'all':<14}{summary['all']['count']:>14}{'':>8}{summary['all']['p50_ms']:>10}{summary['all']['p95_ms']:>10}"
          f"{summary['all']['p99_ms']:>10}")
    acks = summary["acknowledgements"]
    print(f"alerts raised {acks['alerts_raised']}, acknowledged {acks['acknowledged']} (sent {acks['acknowledgements_sent']}, "
          f"refused as already acknowledged {acks['acknowledge_refused']}); time to acknowledge p50 "
          f"{acks['seconds_to_acknowledge_p50']} s, p95 {acks['seconds_to_acknowledge_p95']} s")
    print(f"target p95 <= {args.target_ms:.0f} ms: {'met' if summary['target_met'] else 'MISSED'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
