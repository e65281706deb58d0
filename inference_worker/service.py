"""The worker loop: keeps the engine's queue in step with the database and streams answers out.

The database is the source of truth. Wake-ups make new requests and urgency
overrides take effect at the next step; a full reconciliation every
`reconcile_interval` seconds catches anything a lost wake-up missed.
"""
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from .card_warming import CardWarmer
from .engine.sampling import SamplingParams
from .guard import DegenerationGuard
from .prompting import AnswerText, grounded_prompt_ids
from .stop_strings import find_stop, partial_stop_length
from .store import WorkerRefused

logger = logging.getLogger(__name__)


@dataclass
class ActiveRequest:
    request_id: int
    prompt_tokens: int
    urgency: int
    answer: AnswerText
    guard: DegenerationGuard = field(default_factory=DegenerationGuard)
    stop: tuple = ()  # stop strings: the answer ends where one begins
    started: bool = False
    pending_delta: str = ""
    streamed: int = 0  # characters of the answer streamed so far (from the saved text resumed after)
    last_flush: float = 0.0
    last_saved: float = field(default_factory=time.monotonic)


class InferenceService:
    def __init__(self, engine, tokenizer, store, *, max_answer_tokens=400, reconcile_interval=1.0,
                 stream_interval=0.1, save_interval=1.0, heartbeat_interval=1.0, resend_interval=30.0,
                 answer_sampling=None, card_check=True, warm_cards=()):
        self.engine = engine
        # protocol cards (most urgent first) whose prompt prefixes are prefilled and kept while the engine is idle
        self._warmer = CardWarmer(engine, tokenizer, warm_cards)
        # hold each answer until it follows one of its protocol cards, and withdraw it if it never does
        self.card_check = card_check
        # each answer's SamplingParams, from the TRIAGE_ANSWER_* settings (None: greedy); bad ones fail at start
        self.sampling = SamplingParams(**(answer_sampling or {}))
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
        self._step_started = None  # monotonic time the engine step in progress began
        self.completed = 0
        self.withdrawn = 0

    # --- the loop -------------------------------------------------------------------------
    def run(self, stop_event):
        recovered = False
        threading.Thread(target=self._report_long_steps, args=(stop_event,), name="worker-liveness",
                         daemon=True).start()
        try:
            while not stop_event.is_set():
                try:
                    if not recovered:  # first, and until the database answers
                        self._recover_interrupted()
                        recovered = True
                    self.run_once(idle_wait=0.0 if self.engine.has_work() else 0.2)
                except WorkerRefused:
                    raise
                except Exception:  # database or broker outage: keep the loop, retry shortly
                    logger.exception("worker iteration failed; retrying in 1 s")
                    stop_event.wait(1.0)
        finally:
            self.store.close()

    def _report_long_steps(self, stop_event):
        """The loop heartbeats between steps, and a step can take seconds on a CPU with a full batch: meanwhile
        this thread reports the worker busy, so that no board calls a working worker silent."""
        while not stop_event.wait(self.heartbeat_interval):
            started = self._step_started
            if started is None or time.monotonic() - started < self.heartbeat_interval:
                continue
            try:
                self.store.heartbeat_busy(round(time.monotonic() - started, 1))
            except Exception:
                logger.warning("could not report a long step", exc_info=True)

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
            self._warmer.engine_ran()
        elif self._warmer.pending:
            self._warmer.warm_one(self._engine_busy)
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
        """Drop what closed or is no longer this worker's, follow urgency changes, then claim: a request whose
        answer an override restarted (its cards changed) is dropped and claimed again with its new cards."""
        self._last_reconcile = time.monotonic()
        current = self.store.open_urgencies(self.active.keys())
        for request_id, active in list(self.active.items()):
            if request_id not in current:
                logger.info("request %s closed or no longer this worker's; cancelling", request_id)
                self.engine.cancel(request_id)
                del self.active[request_id]
            elif current[request_id] is not None and current[request_id] != active.urgency:
                logger.info("request %s urgency %s -> %s", request_id, active.urgency, current[request_id])
                active.urgency = current[request_id]
                self.engine.set_urgency(request_id, active.urgency)
        self._claim_requests()

    def _claim_requests(self):
        """Alone, the worker claims every queued request, so its scheduler orders them all. Beside other workers
        it claims only what it has room for (a batch running and a batch waiting) and gives back the rest, so the
        others find work; and when it is full while a more urgent request waits, the worker holding the
        cluster's least urgent running work claims it, and its scheduler preempts (docs/cluster.md)."""
        if not self.store.other_workers_alive():
            for queued in self.store.queued(exclude_ids=self.active.keys()):
                self._admit(queued)
            return
        room = self._room()
        if room > 0:
            for queued in self.store.queued(exclude_ids=self.active.keys(), room=room):
                self._admit(queued)
            return
        self._release_surplus(-room)
        started = [active.urgency for active in self.active.values() if active.started]
        if started and max(started) == self.store.least_urgent_running():
            for queued in self.store.queued(exclude_ids=self.active.keys(), room=1, more_urgent_than=max(started)):
                self._admit(queued)

    def _room(self):
        """How many more requests this worker may hold beside others: a batch running and a batch waiting."""
        return 2 * self.engine.config.max_batch_size - len(self.active)

    def _release_surplus(self, count):
        """Give back the `count` lowest-priority requests this worker holds but has not started."""
        waiting = [rid for rid in reversed(self.engine.queue_order())
                   if rid in self.active and not self.active[rid].started][:count]
        for request_id in waiting:
            self.engine.cancel(request_id)
            del self.active[request_id]
        if waiting:
            self.store.release(waiting)

    def _admit(self, queued):
        answer = AnswerText(self.tokenizer)
        if queued.answer:  # resume after the text an earlier worker saved: it is already on the screens
            answer.extend(self.tokenizer(queued.answer, add_special_tokens=False)["input_ids"])
        longest_prompt = self.engine.max_model_len - self.max_answer_tokens
        prompt_ids, cards = grounded_prompt_ids(self.tokenizer, queued.text, queued.location, queued.cards,
                                                longest_prompt - len(answer.token_ids))
        prompt_ids = prompt_ids + answer.token_ids
        waited = time.time() - queued.created_at.timestamp()
        if len(prompt_ids) > longest_prompt:
            self._refuse(queued.request_id, f"the report is too long for the guidance model: its prompt is "
                                            f"{len(prompt_ids)} tokens and at most {longest_prompt} fit "
                                            f"(TRIAGE_MAX_PROMPT_TOKENS); shorten the report and submit it again")
            return
        answer_room = self.max_answer_tokens - len(answer.token_ids)
        if answer_room < 1:  # the saved answer is already as long as answers may be
            self._finish(self._track(queued, prompt_ids, answer, cards), answer.text)
            return
        try:
            self.engine.add_request(
                queued.request_id,
                prompt_ids,
                urgency=queued.urgency,
                predicted_output_tokens=max(1, min(queued.predicted_output_tokens, self.max_answer_tokens)
                                            - len(answer.token_ids)),
                max_new_tokens=answer_room,
                arrival_time=self.engine.clock() - max(waited, 0.0),
                sampling=self.sampling,
            )
        except ValueError as error:  # this one request cannot run; the others must
            self._refuse(queued.request_id, f"guidance could not be generated: {error}")
            return
        self._track(queued, prompt_ids, answer, cards)

    def _track(self, queued, prompt_ids, answer, cards):
        """cards: those in the prompt, which the answer is checked against."""
        active = self.active[queued.request_id] = ActiveRequest(
            queued.request_id, len(prompt_ids) - len(answer.token_ids), queued.urgency, answer,
            guard=DegenerationGuard(queued.text, queued.location, self._card_key_words(cards)),
            stop=self.sampling.stop, streamed=len(answer.text),
        )
        return active

    def _card_key_words(self, cards):
        return [card.get("key_words", ()) for card in cards] if self.card_check else ()

    def _refuse(self, request_id, reason):
        """Fail one request the engine cannot take, with a reason its page shows. Raising instead would
        abort the reconciliation on every pass and hold back every request queued after it."""
        logger.warning("request %s refused: %s", request_id, reason)
        self.store.mark_failed(request_id, reason)

    # --- one engine step --------------------------------------------------------------------
    @contextmanager
    def _engine_busy(self):
        """Marks engine work in progress, which the liveness thread reports while it lasts."""
        self._step_started = time.monotonic()
        try:
            yield
        finally:
            self._step_started = None

    def _step(self):
        try:
            with self._engine_busy():
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
            self._record_tokens(active, output.new_token_ids, output.finished, now)

    def _record_tokens(self, active, new_token_ids, finished, now):
        """A step's tokens: the answer ends at a stop string or when the engine says so; before anything is
        streamed or saved, the guard may withdraw it."""
        if not active.started:
            active.started = True
            self.store.mark_running(active.request_id, active.prompt_tokens)
        delta = active.answer.extend(new_token_ids)
        active.pending_delta += delta
        stop_at = find_stop(active.answer.text, active.stop, len(delta)) if active.stop else None
        if stop_at is not None:
            self.engine.cancel(active.request_id)  # the engine cannot see text: stop it here
            self._finish(active, active.answer.text[:stop_at])
            return
        if finished:
            self._finish(active, active.answer.text)
            return
        flush_due = now - active.last_flush >= self.stream_interval and active.pending_delta
        save_due = now - active.last_saved >= self.save_interval
        if not (flush_due or save_due):
            return
        reason = active.guard.check(active.answer.text)
        if reason is not None:
            self._withdraw(active, active.answer.text, reason)
            return
        if not active.guard.may_show:  # the text waits, unseen and unsaved, until it follows a card
            if save_due:
                active.last_saved = now
            return
        if flush_due:
            self._flush(active, now)
        if save_due:
            active.last_saved = now
            self.store.save_progress(active.request_id, active.answer.text, len(active.answer.token_ids))

    def _flush(self, active, now, final=False):
        """Stream what is pending, except a tail that may be the start of a stop string."""
        held = 0 if final else partial_stop_length(active.answer.text, active.stop)
        ready = active.pending_delta[:max(0, len(active.pending_delta) - held)]
        if ready:
            self.store.publish_delta(active.request_id, ready, len(active.answer.token_ids), active.streamed)
            active.streamed += len(ready)
            active.pending_delta = active.pending_delta[len(ready):]
        active.last_flush = now

    def _finish(self, active, text):
        """The answer is complete as ``text`` (the decoded answer, cut at a stop string): stored and streamed,
        or withdrawn if the guard objects to it."""
        reason = active.guard.check_finished(text)
        if reason is not None:
            self._withdraw(active, text, reason)
            return
        cut = len(active.answer.text) - len(text)  # what came after the stop string is never streamed
        active.pending_delta = active.pending_delta[:max(0, len(active.pending_delta) - cut)]
        if active.pending_delta:
            self._flush(active, time.monotonic(), final=True)
        self.store.mark_done(active.request_id, text.strip(), len(active.answer.token_ids))
        del self.active[active.request_id]
        self.completed += 1

    def _withdraw(self, active, text, reason):
        """A degenerate answer: stop generating at once and keep it for the audit, marked withdrawn
        so nobody relays it to a caller."""
        self.engine.cancel(active.request_id)
        tokens = len(active.answer.token_ids)
        logger.warning("request %s: answer withdrawn after %d tokens: %s", active.request_id, tokens, reason)
        self.store.mark_withdrawn(active.request_id, text.strip(), tokens, reason)
        del self.active[active.request_id]
        self.completed += 1
        self.withdrawn += 1

    def heartbeat(self):
        """Publish queue order and throughput: the board's positions come from here."""
        now = time.monotonic()
        elapsed = now - self._last_heartbeat if self._last_heartbeat > float("-inf") else None
        stats = dict(self.engine.stats())
        stats["tokens_per_second"] = round(self._tokens_since_heartbeat / elapsed, 1) if elapsed else 0.0
        stats["active_requests"] = len(self.active)
        stats["room"] = max(0, self._room())  # what it may still claim
        stats["completed"] = self.completed  # withdrawn answers included
        stats["withdrawn"] = self.withdrawn
        self._tokens_since_heartbeat = 0
        self._last_heartbeat = now
        try:
            self.store.heartbeat(self.engine.queue_order(), stats)
        except Exception:
            logger.warning("could not write heartbeat", exc_info=True)
