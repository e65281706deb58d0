"""The worker's only door to Django: its settings, queued requests in, progress and answers out.

Requests come in by claim (triage_site/intake/claims.py): the store remembers each claim's fencing token and
sends it with every write, renews the leases with the heartbeat, and forgets a request whose lease was lost."""
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime

from scheduler.urgency import LEAST_URGENT

logger = logging.getLogger(__name__)

# What the worker assumes when a queued request lacks a classification detail (it never should).
UNCLASSIFIED_URGENCY = LEAST_URGENT
UNPREDICTED_OUTPUT_TOKENS = 200


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triage_site.settings")
    import django

    django.setup()


def worker_settings():
    """The build_service() options the settings give (both modes read them)."""
    from django.conf import settings

    return {
        "model_name": settings.TRIAGE_INFERENCE_MODEL,
        "device": settings.TRIAGE_INFERENCE_DEVICE,
        "policy": settings.TRIAGE_SCHEDULER_POLICY,
        "aging": settings.TRIAGE_SCHEDULER_AGING,
        "within_class": settings.TRIAGE_SCHEDULER_WITHIN_CLASS,
        "first_token_targets": settings.TRIAGE_FIRST_TOKEN_TARGETS_S,
        "max_answer_tokens": settings.TRIAGE_MAX_ANSWER_TOKENS,
        "max_prompt_tokens": settings.TRIAGE_MAX_PROMPT_TOKENS,
        "max_batch_size": settings.TRIAGE_MAX_BATCH_SIZE,
        "urgent_batch_size": settings.TRIAGE_URGENT_BATCH_SIZE,
        "kv_cache_max_mb": settings.TRIAGE_KV_CACHE_MAX_MB,
        "prefix_caching": settings.TRIAGE_PREFIX_CACHING,
        "card_check": settings.TRIAGE_ANSWER_CARD_CHECK,
        "model_cache": settings.TRIAGE_MODEL_CACHE,
        "resend_interval": settings.TRIAGE_RESEND_INTERVAL_S,
        "answer_sampling": {
            "temperature": settings.TRIAGE_ANSWER_TEMPERATURE,
            "top_p": settings.TRIAGE_ANSWER_TOP_P,
            "repetition_penalty": settings.TRIAGE_ANSWER_REPETITION_PENALTY,
            "no_repeat_ngram_size": settings.TRIAGE_ANSWER_NO_REPEAT_NGRAM,
            "seed": settings.TRIAGE_ANSWER_SEED,
        },
    }


def publish_on_loop(loop):
    """Embedded mode: events go out on the web server's event loop, where the in-memory channel layer lives."""
    from triage_site.live import events

    events.bind_server_loop(loop)


class WorkerRefused(RuntimeError):
    """This worker must not run here (a second worker on SQLite): stop, with the message."""


@dataclass(frozen=True)
class QueuedRequest:
    request_id: int
    text: str
    location: str
    urgency: int
    predicted_output_tokens: int
    created_at: datetime
    cards: tuple = ()  # the protocol cards shown, {"id", "title", "steps", "key_words"}: the prompt is grounded in them
    answer: str = ""   # what an earlier worker had generated and saved: this one resumes after it


NO_CLAIM_TOKEN = -1  # claim tokens start at 1


class RequestStore:
    """Database operations the inference service needs, and nothing else."""

    def __init__(self, worker_name=None, lease_seconds=None):
        from django.conf import settings

        from triage_site.dispatch import services as dispatch_services
        from triage_site.guidance import selection as guidance
        from triage_site.intake import claims, selectors, services, tasks
        from triage_site.live import events, worker_link

        self._claims = claims
        self._dispatch = dispatch_services
        self._guidance = guidance
        self._events = events
        self._selectors = selectors
        self._services = services
        self._tasks = tasks
        self.worker_name = worker_name or settings.TRIAGE_WORKER_NAME or f"{socket.gethostname()}:{os.getpid()}"
        self.lease_seconds = lease_seconds or settings.TRIAGE_WORKER_LEASE_S
        self._tokens = {}          # request id -> fencing token of this worker's claim on it
        self._gpu = None           # the GpuHold of the GPU this worker runs on, when it chose one
        self._renewed = time.monotonic()
        self.inbox = worker_link.WorkerInbox()

    # --- claims ------------------------------------------------------------------------------
    def recover_interrupted(self):
        """At start: refuse an unmigrated database and a second worker on SQLite; requeue this worker's own
        earlier claims."""
        from triage_site.database_ready import DatabaseNotReady, check_database_ready

        try:
            check_database_ready()
        except DatabaseNotReady as exc:
            raise WorkerRefused(str(exc)) from None
        try:
            self._claims.refuse_second_worker(self.worker_name, lease_seconds=self.lease_seconds)
        except self._claims.SecondWorkerRefused as refusal:
            raise WorkerRefused(str(refusal)) from None
        return self._claims.recover_at_start(self.worker_name)

    def queued(self, exclude_ids=(), room=None, more_urgent_than=None):
        """Claim queued requests: up to `room` (None: every one) in the cluster's order, or with
        `more_urgent_than` only requests more urgent than that level. Expired leases are requeued first."""
        self._claims.requeue_expired()
        rows = self._claims.claim(self.worker_name, limit=room, lease_seconds=self.lease_seconds,
                                  exclude_ids=exclude_ids, more_urgent_than=more_urgent_than)
        claimed = []
        for pk, text, location, urgency, predicted, created, cards, card_texts, answer, token in rows:
            self._tokens[pk] = token
            claimed.append(QueuedRequest(pk, text, location, UNCLASSIFIED_URGENCY if urgency is None else urgency,
                                         predicted or UNPREDICTED_OUTPUT_TOKENS, created,
                                         self._cards_as_shown(cards, card_texts), answer))
        return claimed

    def other_workers_alive(self):
        return self._claims.other_workers_alive(self.worker_name, lease_seconds=self.lease_seconds)

    def least_urgent_running(self):
        return self._claims.least_urgent_running()

    def release(self, request_ids):
        """Give back claimed requests this worker has not started."""
        for request_id in request_ids:
            self._tokens.pop(request_id, None)
        return self._claims.release(self.worker_name, request_ids)

    def _renew(self):
        held = self._claims.renew(self.worker_name, list(self._tokens), lease_seconds=self.lease_seconds)
        lost = [pk for pk, token in self._tokens.items() if held.get(pk) != token]
        for pk in lost:
            self._drop_lost(pk)
        self._renewed = time.monotonic()

    def _drop_lost(self, pk, holder=None):
        """Forget a claim whose token moved on, saying so in the words operators (and the cluster tests) count as
        a lost lease. A request back in the queue may be an answer an override restarted or a lease that expired
        (after another worker's takeover, perhaps): the row cannot tell them apart, so both are said."""
        token = self._tokens.pop(pk)
        if holder in ("", self.worker_name):
            logger.warning("request %s: this worker's lease on it was lost; claim %s is back in the queue (an "
                           "override restarted its answer, or the lease expired)", pk, token)
        else:
            logger.warning("request %s: this worker's lease on it was lost; another worker serves it", pk)

    def _claim(self, request_id):
        """This worker's claim, for a fenced write. A request it no longer holds gets a token no row has, so the
        write changes nothing (None would be an unfenced write, for tools)."""
        return (self.worker_name, self._tokens.get(request_id, NO_CLAIM_TOKEN))

    def _last_claim(self, request_id):
        """The claim for the request's final write; the worker holds it no longer afterwards."""
        claim = self._claim(request_id)
        self._tokens.pop(request_id, None)
        return claim

    def _cards_as_shown(self, references, texts):
        return tuple(card.for_prompt() for card in self._guidance.shown_cards(references, texts))

    def prompt_cards(self):
        """Every protocol card as the prompt shows it, the most urgent first (the order the worker warms them)."""
        return tuple(card.for_prompt() for card in self._guidance.cards_most_urgent_first())

    def open_urgencies(self, request_ids):
        """Current urgency of each request among `request_ids` that is open and still this worker's claim
        (closed ones and lost claims are absent, so the service cancels them). A claim is lost when its token
        moved on: another worker took the request, or an override changed its cards and restarted its answer."""
        current = self._selectors.open_claims(request_ids)
        for pk, (_, token, holder) in current.items():
            if pk in self._tokens and self._tokens[pk] != token:
                self._drop_lost(pk, holder)
        return {pk: urgency for pk, (urgency, token, _) in current.items() if self._tokens.get(pk) == token}

    # --- writes, each fenced by the claim's token -----------------------------------------
    def mark_running(self, request_id, prompt_tokens):
        claim = self._claim(request_id)
        started = self._services.mark_running(request_id, prompt_tokens=prompt_tokens, claim=claim)
        if started:  # which worker generated what, for the operators (and the cluster tests)
            logger.info("request %s: generating on %s (claim %s)", request_id, self.worker_name, claim and claim[1])
        return started

    def save_progress(self, request_id, answer, generated_tokens):
        return self._services.save_progress(request_id, answer=answer, generated_tokens=generated_tokens,
                                            claim=self._claim(request_id))

    def publish_delta(self, request_id, text, generated_tokens, offset):
        """Streamed text reaches screens without a database write, so first make sure the claim still holds
        (after a pause longer than half a lease, renew before speaking)."""
        if time.monotonic() - self._renewed > self.lease_seconds / 2:
            self._renew()
        if request_id in self._tokens:
            self._events.publish_answer_delta(request_id, text=text, generated_tokens=generated_tokens, offset=offset)

    def mark_done(self, request_id, answer, generated_tokens):
        return self._services.mark_done(request_id, answer=answer, generated_tokens=generated_tokens,
                                        claim=self._last_claim(request_id))

    def mark_withdrawn(self, request_id, answer, generated_tokens, reason):
        return self._services.mark_withdrawn(request_id, answer=answer, generated_tokens=generated_tokens,
                                             reason=reason, claim=self._last_claim(request_id))

    def mark_failed(self, request_id, error):
        return self._services.mark_failed(request_id, error=error, claim=self._last_claim(request_id))

    # --- liveness ------------------------------------------------------------------------------
    def heartbeat(self, queue_order, stats):
        self._renew()
        self._dispatch.record_heartbeat(self.worker_name, list(queue_order), dict(stats, lease_s=self.lease_seconds))

    def heartbeat_busy(self, step_running_s):
        """From the liveness thread, during a long step: the leases are renewed too, or a CPU step of more than a
        lease would hand the worker's requests to another. Its database connection is closed after each use."""
        from django.db import connections

        try:
            self._claims.renew(self.worker_name, list(self._tokens), lease_seconds=self.lease_seconds)
            self._dispatch.record_busy(self.worker_name, step_running_s)
        finally:
            connections.close_all()

    def hold_gpu(self, gpu_count):
        """The index of a GPU of this machine that no other live worker holds (kept until close), or None."""
        from django.conf import settings

        from triage_site.dispatch import gpu_slots

        self._gpu = gpu_slots.hold_free_gpu(settings.TRIAGE_GPU_POOL, gpu_count)
        return None if self._gpu is None else self._gpu.index

    def resend_unclassified(self, older_than_seconds):
        return self._tasks.resend_unclassified(older_than_seconds=older_than_seconds)

    def close(self):
        from django.db import connections

        self.inbox.close()
        if self._gpu is not None:
            self._gpu.release()
        connections.close_all()
