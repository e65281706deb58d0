"""Submit realistic emergency requests through the intake form at a chosen rate (the demo's traffic)."""
import asyncio
import json
import time
from pathlib import Path

import httpx
from django.core.management.base import BaseCommand, CommandError

from benchmarks import traffic


class Command(BaseCommand):
    help = ("Sign in as a dispatcher and POST realistic requests to the intake form of a running server, "
            "open-loop at --rate per second, for --seconds (0: until stopped). Prints a summary; --json writes it.")

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server's base URL")
        parser.add_argument("--rate", type=float, default=0.2, help="requests per second (default 0.2; 0 sends nothing)")
        parser.add_argument("--seconds", type=float, default=60.0, help="how long; 0 runs until stopped")
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password-file", type=Path, required=True,
                            help="file holding the dispatcher's password (as written by create_dispatcher)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the server to come up")
        parser.add_argument("--json", dest="json_path", type=Path, help="write the summary here")

    def handle(self, *args, url, rate, seconds, username, password_file, seed, wait, json_path, **options):
        try:
            password = password_file.read_text().strip()
        except OSError as error:
            raise CommandError(f"cannot read the password file {password_file}: {error.strerror}")
        if rate == 0:
            self.stdout.write("--rate 0: sending no traffic.")
            return
        self.wait_for_server(url, wait)
        progress = self.progress_printer()
        try:
            report = asyncio.run(traffic.run(url, username, password, rate=rate, seconds=seconds, seed=seed,
                                             on_submission=progress))
        except traffic.TrafficError as error:
            raise CommandError(str(error))
        summary = report.summary()
        latency = summary["latency_ms"]
        self.stdout.write(f"{summary['accepted']}/{summary['submitted']} accepted at {summary['achieved_rate']}/s, "
                          f"{summary['errors']} errors; intake latency p50 {latency['p50']} ms, "
                          f"p95 {latency['p95']} ms, max {latency['max']} ms")
        if json_path:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(summary, indent=2))
        if summary["errors"]:
            raise CommandError(f"{summary['errors']} submissions failed, e.g. {summary['error_examples']}")

    def wait_for_server(self, url, wait):
        deadline = time.monotonic() + wait
        while True:
            try:
                httpx.get(f"{url}/login/", timeout=5).raise_for_status()
                return
            except httpx.HTTPError as error:
                if time.monotonic() > deadline:
                    raise CommandError(f"{url} did not answer within {wait:.0f} s: {error}")
                time.sleep(2)

    def progress_printer(self, every_seconds=30.0):
        state = {"at": time.monotonic(), "accepted": 0, "errors": 0}

        def on_submission(submission):
            state["errors" if submission.error else "accepted"] += 1
            if submission.error:
                self.stderr.write(f"submission failed: {submission.error}")
            if time.monotonic() - state["at"] >= every_seconds:
                state["at"] = time.monotonic()
                self.stdout.write(f"{state['accepted']} accepted, {state['errors']} failed so far")

        return on_submission
