"""Emergency requests sent through the intake form over HTTP, as call-takers would type them.

One generator serves the docker-compose demo (`manage.py generate_traffic`), the load test of the
reliability suite and the dashboard benchmark. It is open-loop: submissions leave on a fixed
schedule whatever the server's latency, so an overloaded server shows up as latency and errors,
never as a politely lower rate. The texts are the classifier's labelled dataset (every urgency,
varied wording), with caller details drawn from small lists; a seed makes a run repeatable.
"""
import asyncio
import contextlib
import json
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from scheduler.metrics import percentile

DATASET_DIR = Path(__file__).resolve().parents[1] / "data" / "classifier"
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CREATED = re.compile(r"/requests/(\d+)/")
MAX_IN_FLIGHT = 64  # requests on the wire at once; the rest wait their turn (and the wait is timed)
CALLERS = ["", "A. Patel", "J. Smith", "M. Garcia", "neighbour, did not give a name", "K. O'Brien", "L. Nguyen"]
PLACES = ["", "12 Harbour Street, flat 3", "Central Station, platform 4", "Riverside Park, near the cafe",
          "M6 northbound, junction 19", "St Mary's Primary School", "Oak Lane farm, the barn"]


class TrafficError(Exception):
    """The server refused to let the generator start (sign-in failed, no intake form)."""


def load_texts(dataset_dir=DATASET_DIR):
    texts = []
    for path in sorted(dataset_dir.glob("*.jsonl")):
        with path.open() as lines:
            texts.extend(json.loads(line)["text"] for line in lines if line.strip())
    if not texts:
        raise TrafficError(f"no request texts in {dataset_dir}")
    return texts


class RequestMaker:
    """Form fields for one realistic submission at a time; the same seed gives the same sequence."""

    def __init__(self, seed=0, texts=None):
        self.random = random.Random(seed)
        self.texts = texts or load_texts()

    def next_fields(self):
        pick = self.random.choice
        number = "" if self.random.random() < 0.3 else f"07{self.random.randrange(10**8, 10**9)}"
        return {"text": pick(self.texts), "caller_name": pick(CALLERS), "callback_number": number,
                "location": pick(PLACES)}


@dataclass
class Submission:
    """What one POST of the intake form came to: the stored request's id, or the error."""
    seconds: float
    request_id: int | None = None
    error: str = ""


@dataclass
class TrafficReport:
    rate: float
    planned_seconds: float
    submissions: list = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def accepted_ids(self):
        return [s.request_id for s in self.submissions if s.request_id is not None]

    @property
    def errors(self):
        return [s.error for s in self.submissions if s.error]

    def summary(self):
        seconds = sorted(s.seconds for s in self.submissions)
        return {"rate_target": self.rate, "planned_seconds": self.planned_seconds,
                "submitted": len(self.submissions), "accepted": len(self.accepted_ids),
                "errors": len(self.errors), "error_examples": sorted(set(self.errors))[:5],
                "achieved_rate": round(len(self.submissions) / self.wall_seconds, 2) if self.wall_seconds else 0.0,
                "latency_ms": {name: round(percentile(seconds, q) * 1000, 1)
                               for name, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))}}


def csrf_token(html):
    match = CSRF_FIELD.search(html)
    if match is None:
        raise TrafficError("the page has no CSRF token: is this the Triage intake form?")
    return match.group(1)


async def sign_in(client, username, password):
    """Sign in and return the CSRF token of the intake form."""
    token = csrf_token((await client.get("/login/")).text)
    response = await client.post("/login/", data={"username": username, "password": password,
                                                  "csrfmiddlewaretoken": token, "next": "/"})
    if response.status_code != 302:
        raise TrafficError(f"sign-in as {username!r} failed (HTTP {response.status_code}): check the password")
    page = await client.get("/")
    if page.status_code != 200:
        raise TrafficError(f"the intake form answered HTTP {page.status_code} to {username!r}: not a dispatcher?")
    return csrf_token(page.text)


async def submit(client, token, fields, gate=None):
    """POST the intake form once; a stored request answers with a redirect to its page. `gate` bounds the
    requests in flight; the time spent waiting at it counts, as it would in a connection pool's queue."""
    started = time.monotonic()
    try:
        async with gate or contextlib.nullcontext():
            response = await client.post("/", data={**fields, "csrfmiddlewaretoken": token})
    except httpx.HTTPError as error:
        return Submission(time.monotonic() - started, error=f"{type(error).__name__}: {error}")
    seconds = time.monotonic() - started
    match = CREATED.search(response.headers.get("location", "")) if response.status_code == 302 else None
    if match is None:
        return Submission(seconds, error=f"HTTP {response.status_code} {response.headers.get('location', '')}")
    return Submission(seconds, request_id=int(match.group(1)))


async def run(base_url, username, password, *, rate, seconds, seed=0, timeout=60.0, on_submission=None):
    """Submit `rate` requests a second for `seconds` (0: until cancelled) and report every one."""
    if not 0 < rate <= 500:
        raise TrafficError("rate must be above 0 and at most 500 requests a second")
    if seconds < 0:
        raise TrafficError("seconds must be 0 (until stopped) or more")
    maker = RequestMaker(seed)
    report = TrafficReport(rate=rate, planned_seconds=seconds)
    # Requests beyond the connection limit wait at an asyncio semaphore, not in httpcore's pool queue:
    # with thousands queued there, the pool's bookkeeping took the CPU the server under test needed.
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    async with httpx.AsyncClient(base_url=base_url, timeout=None, limits=limits) as client:
        token = await sign_in(client, username, password)

        async def one(fields):
            try:
                submission = await asyncio.wait_for(submit(client, token, fields, gate), timeout)
            except asyncio.TimeoutError:
                submission = Submission(timeout, error=f"no answer within {timeout:g} s")
            report.submissions.append(submission)
            if on_submission is not None:
                on_submission(submission)

        started = time.monotonic()
        pending = set()
        number = 0
        try:
            while seconds == 0 or number < rate * seconds:
                delay = started + number / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.ensure_future(one(maker.next_fields()))
                pending.add(task)
                task.add_done_callback(pending.discard)
                number += 1
            await asyncio.gather(*pending)
        finally:
            report.wall_seconds = time.monotonic() - started
            for task in pending:
                task.cancel()
    return report
