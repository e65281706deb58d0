"""The worker loop: keeps the engine's queue in step with the database and streams answers out.

The database is the source of truth. Wake-ups make new requests and urgency
overrides take effect at the next step; a full reconciliation every
`reconcile_interval` seconds catches anything a lost wake-up missed.
"""
import logging
import time
from dataclasses import dataclass, field

from .prompting import AnswerText, build_prompt_ids

logger = logging.getLogger(__name__)


@dataclass
class ActiveRequest:
    request_id: int
    prompt_tokens: int
    urgency: int
    answer: AnswerText
    started: bool = False
    pending_delta: str = ""
    last_flush: float = 0.0
    last_saved: float = field(default_factory=time.monotonic)


class InferenceService:
    def __init__(self, engine, tokenizer, store, *, max_answer_tokens=400, reconcile_interval=1.0,
                 stream_interval=0.1, save_interval=1.0, heartbeat_interval=1.0, resend_interval=30.0):
        self.engine = engine
        self.tokenizer = tokenizer
        self.store = store
        self.max_answer_tokens = max_answer_tokens
        self.reconcile_interval = reconcile_interval
        self.stream_interval = stream_interval
        self.save_interval = save_interval
        self.heartbeat_interval = heartbeat_interval
        self.resend_interval = resend_interval
        self._last_resend = time.monotonic()
        self.active = {}
        self._last_reconcile = float("-inf")
        self._last_heartbeat = float("-inf")
        self._tokens_since_heartbeat = 0
        self.completed = 0

    # --- the loop -------------------------------------------------------------------------
    def run(self, stop_event):
        recovered = False
        try:
            while not stop_event.is_set():
                try:
                    if not recovered:  # first, and until the database answers
                        self._recover_interrupted()
                        recovered = True
                    self.run_once(idle_wait=0.0 if self.engine.has_work() else 0.2)
                except Exception:  # database or broker outage: keep the loop, retry shortly
                    logger.exception("worker iteration failed; retrying in 1 s")
                    stop_event.wait(1.0)
        finally:
            self.store.close()

    def _recover_interrupted(self):
        recovered = self.store.recover_interrupted()
        if recovered:
            logger.info("re-queued %d requests interrupted by a previous worker", recovered)
        logger.info("inference worker %s ready", self.store.worker_name)

    def run_once(self, idle_wait=0.0):
        """One iteration: wake-ups, periodic reconciliation, one engine step, streaming, heartbeat."""
        for event in self.store.inbox.receive(timeout=idle_wait):
            self._handle_event(event)
        now = time.monotonic()
        if now - self._last_reconcile >= self.reconcile_interval:
            self.reconcile()
        if self.engine.has_work():
            self._step()
        if time.monotonic() - self._last_heartbeat >= self.heartbeat_interval:
            self.heartbeat()
        if time.monotonic() - self._last_resend >= self.resend_interval:
            self._last_resend = time.monotonic()
            # The worker is the one process that always runs: it also re-sends requests
            # whose classification was never enqueued (broker outage) or was lost.
            self.store.resend_unclassified(older_than_seconds=self.resend_interval)

    # --- keeping the engine in step with the database --------------------------------------
    def _handle_event(self, event):
        kind = event.get("event")
        if kind in ("queued", "urgency_changed", "cancelled"):
            # Cheap and always right: read the truth instead of trusting the message.
            self._last_reconcile = float("-inf")

    def reconcile(self):
        self._last_reconcile = time.monotonic()
        for queued in self.store.queued(exclude_ids=self.active.keys()):
            self._admit(queued)
        current = self.store.open_urgencies(self.active.keys())
        for request_id, active in list(self.active.items()):
            if request_id not in current:
                logger.info("request %s closed elsewhere; cancelling", request_id)
                self.engine.cancel(request_id)
                del self.active[request_id]
            elif current[request_id] is not None and current[request_id] != active.urgency:
                logger.info("request %s urgency %s -> %s", request_id, active.urgency, current[request_id])
                active.urgency = current[request_id]
                self.engine.set_urgency(request_id, active.urgency)

    def _admit(self, queued):
        prompt_ids = build_prompt_ids(self.tokenizer, queued.text, queued.location)
        waited = time.time() - queued.created_at.timestamp()
        self.engine.add_request(
            queued.request_id,
            prompt_ids,
            urgency=queued.urgency,
            predicted_output_tokens=min(queued.predicted_output_tokens, self.max_answer_tokens),
            max_new_tokens=self.max_answer_tokens,
            arrival_time=self.engine.clock() - max(waited, 0.0),
        )
        self.active[queued.request_id] = ActiveRequest(
            queued.request_id, len(prompt_ids), queued.urgency, AnswerText(self.tokenizer)
        )

    # --- one engine step --------------------------------------------------------------------
    def _step(self):
        try:
            outputs = self.engine.step()
        except Exception as error:  # a broken step must not take every request down with it
            logger.exception("engine step failed")
            for request_id in list(self.active):
                self.engine.cancel(request_id)
                self.store.mark_failed(request_id, f"generation failed: {error}")
            self.active.clear()
            return
        now = time.monotonic()
        for output in outputs:
            active = self.active.get(output.request_id)
            if active is None:
                continue
            self._tokens_since_heartbeat += len(output.new_token_ids)
            self._record_tokens(active, output.new_token_ids, now)
            if output.finished:
                self._finish(active)

    def _record_tokens(self, active, new_token_ids, now):
        if not active.started:
            active.started = True
            self.store.mark_running(active.request_id, active.prompt_tokens)
        active.pending_delta += active.answer.extend(new_token_ids)
        if now - active.last_flush >= self.stream_interval and active.pending_delta:
            self._flush(active, now)
        if now - active.last_saved >= self.save_interval:
            active.last_saved = now
            self.store.save_progress(active.request_id, active.answer.text, len(active.answer.token_ids))

    def _flush(self, active, now):
        self.store.publish_delta(active.request_id, active.pending_delta, len(active.answer.token_ids))
        active.pending_delta = ""
        active.last_flush = now

    def _finish(self, active):
        if active.pending_delta:
            self._flush(active, time.monotonic())
        self.store.mark_done(active.request_id, active.answer.text.strip(), len(active.answer.token_ids))
        del self.active[active.request_id]
        self.completed += 1

    def heartbeat(self):
        """Publish queue order and throughput: the board's positions come from here."""
        now = time.monotonic()
        elapsed = now - self._last_heartbeat if self._last_heartbeat > float("-inf") else None
        stats = dict(self.engine.stats())
        stats["tokens_per_second"] = round(self._tokens_since_heartbeat / elapsed, 1) if elapsed else 0.0
        stats["active_requests"] = len(self.active)
        stats["completed"] = self.completed
        self._tokens_since_heartbeat = 0
        self._last_heartbeat = now
        try:
            self.store.heartbeat(self.engine.queue_order(), stats)
        except Exception:
            logger.warning("could not write heartbeat", exc_info=True)
