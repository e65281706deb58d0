"""The worker's only door to Django: its settings, queued requests in, progress and answers out."""
import os
import socket
from dataclasses import dataclass
from datetime import datetime

from scheduler.urgency import LEAST_URGENT

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


@dataclass(frozen=True)
class QueuedRequest:
    request_id: int
    text: str
    location: str
    urgency: int
    predicted_output_tokens: int
    created_at: datetime
    cards: tuple = ()  # the protocol cards shown, {"id", "title", "steps", "key_words"}: the prompt is grounded in them


class RequestStore:
    """Database operations the inference service needs, and nothing else."""

    def __init__(self, worker_name=None):
        from triage_site.dispatch import services as dispatch_services
        from triage_site.guidance import selection as guidance
        from triage_site.intake import selectors, services, tasks
        from triage_site.live import events, worker_link

        self._dispatch = dispatch_services
        self._guidance = guidance
        self._events = events
        self._selectors = selectors
        self._services = services
        self._tasks = tasks
        self.worker_name = worker_name or f"{socket.gethostname()}:{os.getpid()}"
        self.inbox = worker_link.WorkerInbox()

    def recover_interrupted(self):
        return self._services.requeue_interrupted()

    def resend_unclassified(self, older_than_seconds):
        return self._tasks.resend_unclassified(older_than_seconds=older_than_seconds)

    def queued(self, exclude_ids=()):
        return [
            QueuedRequest(pk, text, location, UNCLASSIFIED_URGENCY if urgency is None else urgency,
                          predicted or UNPREDICTED_OUTPUT_TOKENS, created, self._card_texts(cards))
            for pk, text, location, urgency, predicted, created, cards
            in self._selectors.queued_for_generation(exclude_ids)
        ]

    def _card_texts(self, references):
        return tuple(card.for_prompt() for card in self._guidance.shown_cards(references))

    def open_urgencies(self, request_ids):
        """Current urgency of each still-open request among `request_ids` (closed ones are absent)."""
        return self._selectors.open_urgencies(request_ids)

    def mark_running(self, request_id, prompt_tokens):
        return self._services.mark_running(request_id, prompt_tokens=prompt_tokens)

    def save_progress(self, request_id, answer, generated_tokens):
        self._services.save_progress(request_id, answer=answer, generated_tokens=generated_tokens)

    def publish_delta(self, request_id, text, generated_tokens):
        self._events.publish_answer_delta(request_id, text=text, generated_tokens=generated_tokens)

    def mark_done(self, request_id, answer, generated_tokens):
        return self._services.mark_done(request_id, answer=answer, generated_tokens=generated_tokens)

    def mark_withdrawn(self, request_id, answer, generated_tokens, reason):
        return self._services.mark_withdrawn(request_id, answer=answer, generated_tokens=generated_tokens,
                                             reason=reason)

    def mark_failed(self, request_id, error):
        return self._services.mark_failed(request_id, error=error)

    def heartbeat(self, queue_order, stats):
        self._dispatch.record_heartbeat(self.worker_name, list(queue_order), stats)

    def heartbeat_busy(self, step_running_s):
        """From the liveness thread, during a long step; its database connection is closed after each use."""
        from django.db import connections

        try:
            self._dispatch.record_busy(self.worker_name, step_running_s)
        finally:
            connections.close_all()

    def close(self):
        from django.db import connections

        self.inbox.close()
        connections.close_all()
