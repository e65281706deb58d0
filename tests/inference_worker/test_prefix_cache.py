"""Prefix caching on CPU: requests sharing a long prompt prefix reuse its KV blocks, with outputs equal token for
token to the engine without the cache and to ``model.generate``, under every kind of preemption, cancel and
eviction; ref counts and the pools return to zero/full; hits skip prefill tokens."""

import random

import pytest
import torch

from inference_worker.engine import Engine, EngineConfig
from inference_worker.engine.prefix_cache import CachingBlockPool, chain_hash
from inference_worker.model_loading import build_random_model, random_config

from .test_engine import reference, urgent_displaces_low

VOCAB = 1024
BS = 4  # block size: small, so prompts span many blocks


@pytest.fixture(scope="module")
def qwen():
    return build_random_model(random_config("tiny", vocab_size=VOCAB), "cpu", torch.float32, seed=1)


def tokens(seed, n):
    rng = random.Random(seed)
    return [rng.randrange(VOCAB) for _ in range(n)]


PREFIX = tokens(100, 37)  # shared "system prompt + card": 9 full blocks and one token


def make_engine(model, cache=True, **kw):
    kw.setdefault("check_invariants", True)
    kw.setdefault("kv_block_size", BS)
    return Engine(model, EngineConfig(enable_prefix_caching=cache, **kw), device="cpu")


def run(engine, arrivals, steps_between=3, max_steps=10_000, got=None):
    """Add each (id, prompt, n, urgency) after `steps_between` steps of the previous; run to the end."""
    got = {} if got is None else got

    def step():
        for o in engine.step():
            got.setdefault(o.request_id, []).extend(o.new_token_ids)

    for rid, prompt, n, urgency in arrivals:
        engine.add_request(rid, prompt, urgency=urgency, predicted_output_tokens=n, max_new_tokens=n)
        for _ in range(steps_between):
            step()
    for _ in range(max_steps):
        if not engine.has_work():
            break
        step()
    assert not engine.has_work()
    return got


def assert_clean(engine):
    """Nothing reserved, no request holds a block: every ref count is 0, every block free or cached."""
    st = engine.stats()
    assert st["kv_blocks_used"] == 0 and st["kv_host_blocks_used"] == 0
    kv = engine.kv
    assert not kv.block_tables and not kv.host_tables and not kv.block_hashes and not kv._hits
    assert all(r == 0 for r in kv.device_free.ref)
    assert len(kv.device_free) == st["kv_blocks_total"]
    assert len(kv.host_free) == st["kv_host_blocks_total"]
    kv.device_free.check({})
    assert not engine._prefix_queries


def shared_prefix_arrivals(n=6, seed=0):
    rng = random.Random(seed)
    return [(i, PREFIX + tokens(200 + i, rng.randint(2, 9)), rng.randint(3, 12), rng.randint(0, 4))
            for i in range(n)]


def test_shared_prefix_exact_and_skips_prefill(qwen):
    arrivals = shared_prefix_arrivals()
    off = make_engine(qwen, cache=False, max_batch_size=8, token_budget=64, kv_device_blocks=200)
    on = make_engine(qwen, cache=True, max_batch_size=8, token_budget=64, kv_device_blocks=200)
    got_off, got_on = run(off, arrivals), run(on, arrivals)
    for rid, prompt, n, _ in arrivals:
        assert got_on[rid] == got_off[rid] == reference(qwen, prompt, n), rid
    s_off, s_on = off.stats(), on.stats()
    assert s_off["prefix_cache_hit_tokens"] == s_off["prefix_cache_queried_tokens"] == 0
    # every later request finds the prefix's 9 full blocks (the first prefilled it in its first step)
    assert s_on["prefix_cache_hit_tokens"] == 36 * (len(arrivals) - 1)
    assert s_on["prefix_cache_queried_tokens"] == sum(len(p) for _, p, _, _ in arrivals)
    assert s_on["prefill_tokens"] == s_off["prefill_tokens"] - s_on["prefix_cache_hit_tokens"]
    assert s_on["kv_cached_blocks"] > 0 and s_off["kv_cached_blocks"] == 0
    assert_clean(on)
    assert_clean(off)


def test_simultaneous_arrivals_and_identical_prompts(qwen):
    """Requests planned in the same step all miss (nothing is written yet) and compute the prefix twice; the
    first registered copy wins. A prompt identical to a cached one still computes its last token."""
    same = PREFIX + [5, 6, 7]  # 40 tokens: 10 full blocks, but the last token must be computed
    arrivals = [("a", same, 6, 1), ("b", same, 6, 1), ("c", PREFIX + [9], 5, 2)]
    on = make_engine(qwen, max_batch_size=4, token_budget=256, kv_device_blocks=100)
    got = run(on, arrivals, steps_between=0)
    run(on, [("d", same, 6, 0)], steps_between=0, got=got)
    for rid, prompt, n, _ in arrivals + [("d", same, 6, 0)]:
        assert got[rid] == reference(qwen, prompt, n), rid
    st = on.stats()
    assert st["prefix_cache_hit_tokens"] == 36  # only "d": 9 blocks, its 10th (holding its last token) computed
    assert_clean(on)


def _preemption_run(model, cache, **kw):
    """test_engine's preemption scenario, with both requests sharing a prefix: the urgent one takes the blocks
    the preempted one is leaving."""
    e = make_engine(model, cache=cache, token_budget=64, **kw)
    st = urgent_displaces_low(e, model, PREFIX[:16] + tokens(5, 14), PREFIX[:16] + tokens(6, 4))
    assert_clean(e)
    return st


@pytest.mark.parametrize("cache", [True, False])
def test_preempt_keep(qwen, cache):
    st = _preemption_run(qwen, cache, max_batch_size=1, kv_device_blocks=200)
    assert st["swaps_out"] == 0 and st["recomputes"] == 0
    assert st["prefix_cache_hit_tokens"] == (16 if cache else 0)  # the kept request's prefix blocks


@pytest.mark.parametrize("cache", [True, False])
def test_preempt_swap(qwen, cache):
    st = _preemption_run(qwen, cache, max_batch_size=2, kv_device_blocks=20, kv_host_blocks=40,
                         swap_cost_per_token=1e-9)
    assert st["swaps_out"] >= 1 and st["swaps_in"] >= 1 and st["recomputes"] == 0
    # the urgent request takes the prefix blocks the swapped-out one releases in the same step
    assert st["prefix_cache_hit_tokens"] == (16 if cache else 0)


@pytest.mark.parametrize("cache", [True, False])
def test_preempt_recompute(qwen, cache):
    st = _preemption_run(qwen, cache, max_batch_size=2, kv_device_blocks=20, kv_host_blocks=0)
    assert st["recomputes"] >= 1 and st["swaps_out"] == 0
    if cache:
        # urgent hits the shared prefix; the recompute of 'low' (61 tokens) finds its own released blocks
        # still cached, all 15 full ones short of its last token
        assert st["prefix_cache_hit_tokens"] >= 16 + 40
    else:
        assert st["prefix_cache_hit_tokens"] == 0


def test_tight_memory_mixed_prefixes(qwen):
    """More work than KV: repeated preemption (swap and recompute), eviction of cached blocks, and two
    families of shared prefixes; outputs equal with and without the cache."""
    rng = random.Random(7)
    prefixes = [PREFIX[:21], tokens(300, 26)]
    arrivals = [(i, rng.choice(prefixes) + tokens(400 + i, rng.randint(1, 8)), rng.randint(4, 24),
                 rng.randint(0, 4)) for i in range(12)]
    results = {}
    for cache in (True, False):
        e = make_engine(qwen, cache=cache, max_batch_size=4, token_budget=24, kv_device_blocks=40,
                        kv_host_blocks=20)
        results[cache] = (run(e, arrivals, steps_between=1), e.stats())
        assert_clean(e)
    for rid, prompt, n, _ in arrivals:
        assert results[True][0][rid] == results[False][0][rid] == reference(qwen, prompt, n), rid
    st = results[True][1]
    assert st["preemptions"] >= 1 and st["prefix_cache_hit_tokens"] > 0


def test_cancel_releases_shared_blocks(qwen):
    """Cancelling requests that share blocks with running ones leaves the others exact and frees everything."""
    arrivals = shared_prefix_arrivals(5, seed=3)
    e = make_engine(qwen, max_batch_size=3, token_budget=64, kv_device_blocks=100)
    got = {}
    for rid, prompt, n, u in arrivals:
        e.add_request(rid, prompt, urgency=u, predicted_output_tokens=30, max_new_tokens=30)
        for o in e.step():
            got.setdefault(o.request_id, []).extend(o.new_token_ids)
    shared = [b for b in e.kv.block_tables.get(0, ())[:9]]
    assert shared and all(e.kv.device_free.ref[b] >= 2 for b in shared)
    e.cancel(0)   # running, its prefix blocks shared
    e.cancel(4)   # waiting or running
    assert all(e.kv.device_free.ref[b] >= 1 for b in shared)
    e.check_invariants()
    run(e, [], got=got)
    for rid, prompt, _, _ in arrivals[1:4]:
        assert got[rid] == reference(qwen, prompt, 30), rid
    for rid in (1, 2, 3):
        e.cancel(rid)  # already finished: a no-op
    assert_clean(e)


def test_disabled_registers_nothing(qwen):
    e = make_engine(qwen, cache=False, max_batch_size=4, token_budget=64, kv_device_blocks=50)
    run(e, shared_prefix_arrivals(3))
    assert e.sched.prefix_hit is None
    assert e.kv.device_free.num_cached == 0 and len(e.kv.device_free) == 50
    assert_clean(e)


def test_pool_evicts_kept_blocks_only_after_every_other_cached_block():
    pool = CachingBlockPool(range(1, 6))
    a, b, c, d, e = pool.allocate(5)
    for block, token in ((a, 1), (b, 2), (c, 3), (d, 4), (e, 5)):
        pool.register(block, chain_hash(0, [token]), [token])
    pool.free([a])
    pool.free([b])
    pool.keep([b, a, c])              # kept, b evicted last of them; c is in use: kept once released
    assert pool.ref[c] == 1 and pool.num_cached == 2
    pool.free([c])
    pool.free([d])                    # released after the kept ones, but not kept: evicted first
    pool.check({e: 1})
    assert pool.allocate(1) == [d]
    assert pool.allocate(3) == [a, b, c]  # then the kept ones, least recent first: a, b as kept, c released after
    pool.check({e: 1, d: 1, c: 1, a: 1, b: 1})
    pool.register(c, chain_hash(0, [9]), [9])  # c now holds other tokens: not kept
    pool.register(a, chain_hash(0, [1]), [1])  # a computed the same tokens again: its hash is kept, so is it
    pool.free([a])
    pool.free([c])
    pool.check({e: 1, d: 1, b: 1})
    assert pool.allocate(2) == [c, a]


def test_pool_lru_and_ref_counts():
    pool = CachingBlockPool(range(1, 5))
    a, b = pool.allocate(2)
    ha, hb = chain_hash(0, [1]), chain_hash(chain_hash(0, [1]), [2])
    pool.register(a, ha, [1])
    pool.register(b, hb, [2])
    assert pool.lookup(ha, [1]) == a and pool.lookup(ha, [9]) is None  # token ids are checked too
    pool.take(a)                      # a second table shares block a
    pool.free([a, b])                 # the first table ends: b is cached, a still held
    assert pool.ref[a] == 1 and pool.ref[b] == 0 and pool.num_cached == 1
    pool.free([a])                    # now a is cached too, after b (least recently released first)
    assert pool.num_cached == 2 and len(pool) == 4
    pool.check({})
    c, d = pool.allocate(2)           # the free blocks go first
    assert {c, d} & {a, b} == set() and pool.lookup(ha, [1]) == a
    (e,) = pool.allocate(1)           # then the least recently used cached block: b
    assert e == b and pool.lookup(hb, [2]) is None and pool.lookup(ha, [1]) == a
    pool.take(a)                      # a cached block is taken back from the LRU
    assert pool.num_cached == 0 and pool.ref[a] == 1
    pool.register(e, ha, [1])         # a hash already registered keeps its block
    assert pool.lookup(ha, [1]) == a
    pool.check({a: 1, c: 1, d: 1, e: 1})
    with pytest.raises(RuntimeError):
        pool.allocate(1)


def test_hit_taken_before_the_same_step_releases_the_old_table():
    """A paused (KEEP) request evicted with RECOMPUTE and re-admitted in one schedule() is asked for its prefix
    while its old table is still held: the hit waits until the step's release, then becomes the new table."""
    from inference_worker.engine.kv_cache import PagedKVCache

    kv = PagedKVCache(1, 1, 2, BS, 6, 0, torch.float32, "cpu")
    toks = list(range(10))
    old = list(kv.ensure("a", 10))          # 3 blocks, the first two full
    kv.register_written("a", toks, 10)
    assert kv.match_prefix("a", toks + [10]) == 8   # takes the two full blocks (ref 2)
    assert kv.device_free.ref[old[0]] == 2
    kv.free("a")                            # the RECOMPUTE release, applied after planning
    kv.commit_prefix_hits()
    assert kv.block_tables["a"] == old[:2] and kv.block_hashes["a"]
    kv.device_free.check({old[0]: 1, old[1]: 1})
    kv.ensure("a", 11)
    kv.free("a")
    kv.device_free.check({})
    assert len(kv.device_free) == 6 and kv.device_free.num_cached == 2


def test_a_warmed_prefix_serves_the_first_request_exactly(qwen):
    """warm_prefix leaves the shared prompt's full blocks cached, so even the first request that starts with it
    skips their prefill, and its answer is the same token for token."""
    engine = make_engine(qwen, max_batch_size=4, token_budget=64, kv_device_blocks=100)
    assert engine.warm_prefix(PREFIX) == 36
    assert engine.stats()["kv_cached_blocks"] == 9 and not engine.has_work()
    prompt = PREFIX + tokens(300, 5)
    got = run(engine, [("first", prompt, 6, 0)])
    assert got["first"] == reference(qwen, prompt, 6)
    assert engine.stats()["prefix_cache_hit_tokens"] == 36
    assert_clean(engine)
    with pytest.raises(RuntimeError, match="idle"):
        engine.add_request("busy", prompt, urgency=1, predicted_output_tokens=2, max_new_tokens=2)
        engine.warm_prefix(PREFIX)


def test_warm_prefix_does_nothing_without_the_cache(qwen):
    engine = make_engine(qwen, cache=False, max_batch_size=4, token_budget=64, kv_device_blocks=100)
    assert engine.warm_prefix(PREFIX) == 0 and engine.stats()["prefill_tokens"] == 0
