"""Answers for an evaluation (`manage.py evaluate_guidance --generate N`): the configured model through the
real service, with its sampling defaults, stop strings and degeneration guard, but an in-memory store instead
of the database, so the figures count exactly what a dispatcher would have been shown."""
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .build import build_service
from .store import QueuedRequest, worker_settings

MAX_SECONDS = 3600


class _NoWakeUps:
    def receive(self, timeout=0.0):
        return []

    def close(self):
        pass


@dataclass
class Outcome:
    answer: str = ""
    withdrawn: str = ""     # the guard's reason, "" when the answer stands
    failed: str = ""
    generated_tokens: int = 0
    finished: bool = False


@dataclass
class MemoryStore:
    """The RequestStore's interface over a list of requests; every answer ends in `outcomes`."""

    queue: list
    outcomes: dict = field(default_factory=dict)
    worker_name: str = "evaluate_guidance"
    inbox: _NoWakeUps = field(default_factory=_NoWakeUps)

    def hold_gpu(self, gpu_count):  # an evaluation runs alone: the first GPU is its own
        return 0

    def other_workers_alive(self):  # one worker: it claims every queued request
        return False

    def queued(self, exclude_ids=(), room=None, more_urgent_than=None):
        taken = self.queue
        self.queue = []
        return [request for request in taken if request.request_id not in exclude_ids]

    def prompt_cards(self):  # an evaluation's requests arrive at once: nothing to warm before them
        return ()

    def open_urgencies(self, request_ids):
        return {rid: None for rid in request_ids if not self.outcomes[rid].finished}

    def mark_running(self, request_id, prompt_tokens):
        return True

    def save_progress(self, request_id, answer, generated_tokens):
        self.outcomes[request_id].answer = answer

    def publish_delta(self, request_id, text, generated_tokens, offset):
        pass

    def mark_done(self, request_id, answer, generated_tokens):
        self._finish(request_id, answer, generated_tokens)

    def mark_withdrawn(self, request_id, answer, generated_tokens, reason):
        self._finish(request_id, answer, generated_tokens, withdrawn=reason)

    def mark_failed(self, request_id, error):
        self._finish(request_id, "", 0, failed=str(error))

    def _finish(self, request_id, answer, generated_tokens, withdrawn="", failed=""):
        self.outcomes[request_id] = Outcome(answer, withdrawn, failed, generated_tokens, True)

    def heartbeat(self, queue_order, stats):
        pass

    def heartbeat_busy(self, step_running_s):
        pass

    def recover_interrupted(self):
        return 0

    def resend_unclassified(self, older_than_seconds):
        return 0

    def close(self):
        pass


def generate_answers(requests):
    """`requests`: dicts with text, urgency and cards ({"id", "title", "steps", "key_words"}). Returns one Outcome each, in
    order, generated as the worker would (its settings, batch and scheduler)."""
    now = datetime.now(timezone.utc)
    queue = [QueuedRequest(number, request["text"], "", request["urgency"], 200, now, tuple(request["cards"]))
             for number, request in enumerate(requests)]
    store = MemoryStore(queue, {number: Outcome() for number in range(len(queue))})
    service = build_service(**worker_settings(), store=store)
    deadline = time.monotonic() + MAX_SECONDS
    while not all(outcome.finished for outcome in store.outcomes.values()) and time.monotonic() < deadline:
        service.run_once()
    return [store.outcomes[number] for number in range(len(queue))]
