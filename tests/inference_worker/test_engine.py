"""Engine correctness on CPU: greedy outputs equal ``model.generate`` token for token across batch
compositions, chunked prefill, preemption (KEEP / SWAP / RECOMPUTE) and resume, cancel and EOS;
block accounting agrees with the scheduler's every step and returns to zero."""

import random

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from inference_worker.engine import Engine, EngineConfig
from inference_worker.model_loading import build_random_model, random_config

VOCAB = 1024


@pytest.fixture(scope="module")
def qwen():
    return build_random_model(random_config("tiny", vocab_size=VOCAB), "cpu", torch.float32, seed=1)


@pytest.fixture(scope="module")
def llama():
    torch.manual_seed(2)
    cfg = LlamaConfig(hidden_size=96, intermediate_size=192, num_hidden_layers=2, num_attention_heads=6,
                      num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=1024,
                      bos_token_id=None, eos_token_id=None, tie_word_embeddings=False)
    return LlamaForCausalLM(cfg).eval()


_REFS = {}


def reference(model, prompt, n):
    key = (id(model), tuple(prompt), n)
    if key not in _REFS:
        _REFS[key] = _generate(model, prompt, n)
    return _REFS[key]


def _generate(model, prompt, n):
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                             eos_token_id=None, pad_token_id=0)
    return out[0, len(prompt):].tolist()


def workload(seed, n, max_prompt=40, max_new=24):
    rng = random.Random(seed)
    return [([rng.randrange(VOCAB) for _ in range(rng.randint(1, max_prompt))], rng.randint(1, max_new), rng.randint(0, 4))
            for _ in range(n)]


def make_engine(model, **kw):
    kw.setdefault("check_invariants", True)
    kw.setdefault("kv_block_size", 4)
    return Engine(model, EngineConfig(**kw), device="cpu")


def drain(engine, outputs=None, max_steps=10_000):
    outputs = outputs if outputs is not None else {}
    reasons = {}
    for _ in range(max_steps):
        if not engine.has_work():
            break
        for o in engine.step():
            outputs.setdefault(o.request_id, []).extend(o.new_token_ids)
            if o.finished:
                assert o.request_id not in reasons, "finished twice"
                reasons[o.request_id] = o.finish_reason
    assert not engine.has_work()
    return outputs, reasons


def assert_clean(engine):
    st = engine.stats()
    assert st["kv_blocks_used"] == 0 and st["kv_host_blocks_used"] == 0
    assert engine.sched.kv_device_blocks_used == 0 and engine.sched.kv_host_blocks_used == 0
    assert st["running"] == st["waiting"] == 0


@pytest.mark.parametrize("max_batch_size,token_budget", [(8, 512), (3, 16), (1, 8), (4, 5)])
def test_greedy_equals_generate(qwen, max_batch_size, token_budget):
    reqs = workload(0, 7)
    refs = [reference(qwen, p, n) for p, n, _ in reqs]
    e = make_engine(qwen, max_batch_size=max_batch_size, token_budget=token_budget, kv_device_blocks=200)
    for i, (p, n, u) in enumerate(reqs):
        e.add_request(i, p, urgency=u, predicted_output_tokens=max(1, n // 2), max_new_tokens=n)
    got, reasons = drain(e)
    for i in range(len(reqs)):
        assert got[i] == refs[i], f"request {i} (prompt {len(reqs[i][0])}, budget {token_budget})"
        assert reasons[i] == "length"
    if token_budget < 40:  # prompts up to 40 tokens: some prefill must have been chunked
        assert e.stats()["prefill_tokens"] == sum(len(p) for p, _, _ in reqs)
    assert_clean(e)


def test_llama_family_and_staggered_arrivals(llama):
    reqs = workload(3, 6)
    refs = [reference(llama, p, n) for p, n, _ in reqs]
    e = make_engine(llama, max_batch_size=4, token_budget=12, kv_device_blocks=200)
    got = {}
    for i, (p, n, u) in enumerate(reqs):  # a new request every other step: batches change every step
        e.add_request(i, p, urgency=u, predicted_output_tokens=n, max_new_tokens=n)
        for _ in range(2):
            for o in e.step():
                got.setdefault(o.request_id, []).extend(o.new_token_ids)
    drain(e, got)
    assert [got[i] for i in range(len(reqs))] == refs
    assert_clean(e)


def urgent_displaces_low(engine, model, low_prompt, urgent_prompt, low_n=40, urgent_n=10):
    """A long urgency-4 request runs 30 decode steps; then an urgency-0 request arrives and must displace it.
    Both outputs equal ``generate`` and the urgent one finishes first. Returns the engine's stats."""
    engine.add_request("low", low_prompt, urgency=4, predicted_output_tokens=low_n, max_new_tokens=low_n)
    got = {}
    for _ in range(31):  # prefill (1 step) + 30 decodes: 'low' holds 61 tokens of KV
        for o in engine.step():
            got.setdefault(o.request_id, []).extend(o.new_token_ids)
    assert len(got["low"]) == 31
    engine.add_request("urgent", urgent_prompt, urgency=0, predicted_output_tokens=urgent_n, max_new_tokens=urgent_n)
    order = []
    while engine.has_work():
        for o in engine.step():
            got.setdefault(o.request_id, []).extend(o.new_token_ids)
            if o.finished:
                order.append(o.request_id)
    assert got["urgent"] == reference(model, urgent_prompt, urgent_n)
    assert got["low"] == reference(model, low_prompt, low_n)
    assert order == ["urgent", "low"]
    st = engine.stats()
    assert st["preemptions"] >= 1
    return st


def _preemption_run(model, action, **kw):
    """`action` names the kind of preemption the engine settings force (keep, swap or recompute)."""
    long_prompt = [random.Random(5).randrange(VOCAB) for _ in range(30)]
    short_prompt = [random.Random(6).randrange(VOCAB) for _ in range(20)]
    e = make_engine(model, token_budget=64, **kw)
    st = urgent_displaces_low(e, model, long_prompt, short_prompt)
    assert_clean(e)
    return st


def test_preempt_keep_and_resume(qwen):
    # batch of one, plenty of KV: the urgent request takes the slot, 'low' keeps its KV on device
    st = _preemption_run(qwen, "keep", max_batch_size=1, kv_device_blocks=200)
    assert st["swaps_out"] == 0 and st["recomputes"] == 0


def test_preempt_swap_and_resume(qwen):
    # 20 device blocks of 4 tokens: 'low' (61 tokens) leaves no room; host has room and swapping is cheap
    st = _preemption_run(qwen, "swap", max_batch_size=2, kv_device_blocks=20, kv_host_blocks=40,
                         swap_cost_per_token=1e-9)
    assert st["swaps_out"] >= 1 and st["swaps_in"] >= 1 and st["recomputes"] == 0


def test_preempt_recompute_and_resume(qwen):
    st = _preemption_run(qwen, "recompute", max_batch_size=2, kv_device_blocks=20, kv_host_blocks=0)
    assert st["recomputes"] >= 1 and st["swaps_out"] == 0


def test_many_requests_tight_memory(qwen):
    """More work than KV: the scheduler preempts and resumes repeatedly; outputs stay exact."""
    reqs = workload(7, 10, max_prompt=30, max_new=30)
    refs = [reference(qwen, p, n) for p, n, _ in reqs]
    e = make_engine(qwen, max_batch_size=4, token_budget=24, kv_device_blocks=40, kv_host_blocks=20)
    got = {}
    for i, (p, n, u) in enumerate(reqs):
        e.add_request(i, p, urgency=u, predicted_output_tokens=n, max_new_tokens=n)
        for o in e.step():
            got.setdefault(o.request_id, []).extend(o.new_token_ids)
    drain(e, got)
    assert [got[i] for i in range(len(reqs))] == refs
    assert_clean(e)


def test_cancel_frees_blocks(qwen):
    reqs = workload(9, 4)
    e = make_engine(qwen, max_batch_size=2, token_budget=64, kv_device_blocks=100)
    for i in (0, 1):
        e.add_request(i, reqs[i][0], urgency=0, predicted_output_tokens=30, max_new_tokens=30)
    got = {}
    for _ in range(3):
        for o in e.step():
            got.setdefault(o.request_id, []).extend(o.new_token_ids)
    for i in (2, 3):  # less urgent: they wait (the batch holds two)
        e.add_request(i, reqs[i][0], urgency=4, predicted_output_tokens=reqs[i][1], max_new_tokens=reqs[i][1])
    assert e.stats()["kv_blocks_used"] > 0 and set(got) == {0, 1}
    e.cancel(0)   # running
    e.cancel(3)   # waiting
    e.cancel("no-such-request")
    drain(e, got)
    assert got[1] == reference(qwen, reqs[1][0], 30)
    assert got[2] == reference(qwen, reqs[2][0], reqs[2][1])
    assert 3 not in got and len(got[0]) == 3
    assert e.stats()["cancelled"] == 2
    assert_clean(e)


def test_eos_stops_request(qwen):
    prompt, n = workload(11, 1)[0][0], 20
    ref = reference(qwen, prompt, n)
    eos = ref[5]
    stop = ref.index(eos)
    e = make_engine(qwen, max_batch_size=2, token_budget=64, kv_device_blocks=100, eos_token_ids=[eos])
    e.add_request("a", prompt, urgency=1, predicted_output_tokens=n, max_new_tokens=n)
    got, reasons = drain(e)
    assert got["a"] == ref[:stop + 1]
    assert reasons["a"] == "eos"
    assert_clean(e)


def test_queue_order_and_set_urgency(qwen):
    e = make_engine(qwen, max_batch_size=1, token_budget=64, kv_device_blocks=100)
    for i, u in enumerate([3, 2, 4]):
        e.add_request(i, [1, 2, 3], urgency=u, predicted_output_tokens=5, max_new_tokens=5)
    assert e.queue_order() == [1, 0, 2]
    e.set_urgency(2, 0)
    assert e.queue_order()[0] == 2
    with pytest.raises(ValueError):
        e.add_request(0, [1], urgency=0, predicted_output_tokens=1, max_new_tokens=1)
    drain(e)
    assert_clean(e)


def test_rejects_too_long(qwen):
    e = make_engine(qwen, max_batch_size=1, token_budget=64, kv_device_blocks=100, max_model_len=32)
    with pytest.raises(ValueError):
        e.add_request("x", list(range(30)), urgency=0, predicted_output_tokens=5, max_new_tokens=5)
