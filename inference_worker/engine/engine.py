"""The continuous-batching engine: scheduler-driven steps over the paged KV cache.

A step: the scheduler plans it, the engine moves preempted requests' KV (swap out, free, swap in),
prepares one flat batch (decodes, then prefill chunks), the model runner samples the next tokens,
and the engine appends them, reports them and tells the scheduler which requests finished.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch

from scheduler import KVLocation, PreemptAction, RequestState, SchedRequest, Scheduler, StepPlan, blocks_for
from scheduler.urgency import LEAST_URGENT

from .batch import StepBatch
from .config import EngineConfig
from .kv_cache import PagedKVCache, kv_bytes_per_block
from .model_runner import ModelRunner
from .sampling import GREEDY, SamplingParams
from .sequence import Sequence

logger = logging.getLogger(__name__)


@dataclass
class StepOutput:
    request_id: object
    new_token_ids: list[int]
    finished: bool
    finish_reason: str | None = None   # "eos" | "length" | None


def _default_graph_sizes(max_bs: int) -> list[int]:
    sizes = [b for b in (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256, 320, 384, 448, 512)
             if b < max_bs]
    return sizes + [max_bs]


class Engine:
    def __init__(self, model, config: EngineConfig | None = None, device: str | torch.device = "cpu"):
        self.config = config = config or EngineConfig()
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        model.eval()
        self.model = model
        cfg = model.config
        self.dtype = model.model.embed_tokens.weight.dtype
        self.max_model_len = config.max_model_len or min(getattr(cfg, "max_position_embeddings", 4096) or 4096, 4096)
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        num_device_blocks = self._device_block_count(cfg.num_hidden_layers, cfg.num_key_value_heads, head_dim)
        self.kv = PagedKVCache(cfg.num_hidden_layers, cfg.num_key_value_heads, head_dim, config.kv_block_size,
                               num_device_blocks, config.kv_host_blocks, self.dtype, self.device,
                               prefix_caching=config.enable_prefix_caching)
        self.runner = ModelRunner(model, self.kv, self.device, self.max_model_len)
        self.sched = Scheduler(config.scheduler_config(num_device_blocks),
                               prefix_hit=self._match_prefix if config.enable_prefix_caching else None)
        self._prefix_queries: dict[object, tuple[int, int]] = {}  # request -> (tokens asked, tokens hit)
        self.eos = set(int(t) for t in (config.eos_token_ids or ()))
        self.seqs: dict[object, Sequence] = {}
        self._stats = dict(steps=0, graph_steps=0, generated_tokens=0, prefill_tokens=0, busy_s=0.0,
                           preemptions=0, swaps_out=0, swaps_in=0, recomputes=0, finished=0, cancelled=0,
                           prefix_cache_hit_tokens=0, prefix_cache_queried_tokens=0)
        if self.device.type == "cuda" and config.use_cuda_graphs:
            sizes = config.graph_batch_sizes or _default_graph_sizes(config.max_batch_size)
            with torch.inference_mode():
                self.runner.capture_graphs(sorted(set(min(s, config.max_batch_size) for s in sizes)))

    def _device_block_count(self, num_layers: int, num_kv_heads: int, head_dim: int) -> int:
        """config.kv_device_blocks; else a kv_cache_fraction of free CUDA memory; else (CPU) a full batch at
        max_model_len, capped at kv_cache_max_mb. A pool the engine sizes itself must hold one request of
        max_model_len, or no request of the allowed length could ever finish: a clear error at start instead."""
        config = self.config
        bytes_per_block = kv_bytes_per_block(num_layers, num_kv_heads, head_dim, config.kv_block_size, self.dtype)
        if config.kv_device_blocks is not None:
            blocks = config.kv_device_blocks
        else:
            blocks = self._sized_block_count(bytes_per_block)
            self._require_one_full_request(blocks, bytes_per_block)
        self._log_kv_size(blocks, bytes_per_block)
        return blocks

    def _sized_block_count(self, bytes_per_block: int) -> int:
        config = self.config
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            return int(free * config.kv_cache_fraction) // bytes_per_block
        full_batch = config.max_batch_size * blocks_for(self.max_model_len, config.kv_block_size)
        if config.kv_cache_max_mb is None:
            return full_batch
        return min(full_batch, int(config.kv_cache_max_mb * 2**20) // bytes_per_block)

    def _require_one_full_request(self, blocks: int, bytes_per_block: int) -> None:
        need = blocks_for(self.max_model_len, self.config.kv_block_size)
        if blocks < need:
            raise ValueError(
                f"the KV cache holds {blocks} blocks ({blocks * bytes_per_block / 2**20:.1f} MB) but one request of "
                f"max_model_len {self.max_model_len} tokens (longest prompt + longest answer) needs {need} blocks "
                f"({need * bytes_per_block / 2**20:.1f} MB): raise the KV memory cap (kv_cache_max_mb, "
                f"TRIAGE_KV_CACHE_MAX_MB) or lower the prompt or answer limits "
                f"(TRIAGE_MAX_PROMPT_TOKENS, TRIAGE_MAX_ANSWER_TOKENS)")

    def _log_kv_size(self, blocks: int, bytes_per_block: int) -> None:
        block_size = self.config.kv_block_size
        logger.info("KV cache on %s: %d blocks x %d tokens = %d tokens, %.1f MB (max_model_len %d, "
                    "%.1f full-length requests)", self.device, blocks, block_size, blocks * block_size,
                    blocks * bytes_per_block / 2**20, self.max_model_len,
                    blocks / blocks_for(self.max_model_len, block_size))

    # ------------------------------------------------------------------ requests
    @staticmethod
    def clock() -> float:
        return time.perf_counter()

    def add_request(self, request_id, prompt_token_ids: list[int], urgency: int, predicted_output_tokens: int,
                    max_new_tokens: int, arrival_time: float | None = None,
                    sampling: SamplingParams | None = None) -> None:
        """Queue a request; ``sampling`` None is greedy. Its stop strings are the caller's to apply (no text here)."""
        if request_id in self.seqs:
            raise ValueError(f"duplicate request id {request_id!r}")
        prompt = [int(t) for t in prompt_token_ids]
        if not prompt:
            raise ValueError("empty prompt")
        if len(prompt) + max_new_tokens > self.max_model_len:
            raise ValueError(f"prompt ({len(prompt)}) + max_new_tokens ({max_new_tokens}) exceeds "
                             f"max_model_len {self.max_model_len}")
        req = SchedRequest(request_id, int(urgency), len(prompt), max(1, int(predicted_output_tokens)),
                           self.clock() if arrival_time is None else arrival_time,
                           max_output_tokens=int(max_new_tokens))
        self.sched.add(req)
        self.seqs[request_id] = Sequence(req, prompt, int(max_new_tokens), sampling or GREEDY)

    def warm_prefix(self, token_ids: list[int]) -> int:
        """Prefill ``token_ids`` alone (one token is generated and dropped) so that their full blocks stay in the
        prefix cache for the requests that start with them. Only on an idle engine, and only with prefix caching.
        Returns the tokens the cache now holds for them (whole blocks)."""
        if self.seqs:
            raise RuntimeError("warm_prefix needs an idle engine")
        if not self.config.enable_prefix_caching:
            return 0
        self.add_request(("warm-prefix", hash(tuple(token_ids))), token_ids, LEAST_URGENT, 1, 1)
        while self.seqs:
            self.step()
        return len(token_ids) // self.config.kv_block_size * self.config.kv_block_size

    def keep_prefix(self, token_ids: list[int]) -> int:
        """Keep the cached blocks of ``token_ids``: the prefix cache evicts them only after every block not kept,
        and these after the blocks kept before them. Returns the tokens they hold."""
        return self.kv.keep_prefix(token_ids)

    def cached_prefix_tokens(self, token_ids: list[int]) -> int:
        """Tokens of ``token_ids``' head the prefix cache holds (whole blocks), without using them."""
        return self.kv.cached_prefix_tokens(token_ids)

    def set_urgency(self, request_id, urgency: int) -> None:
        self.sched.set_urgency(request_id, urgency)

    def cancel(self, request_id) -> None:
        if request_id not in self.seqs:
            return
        self.sched.cancel(request_id)
        self._prefix_queries.pop(request_id, None)
        self.kv.free(request_id)
        del self.seqs[request_id]
        self._stats["cancelled"] += 1

    def has_work(self) -> bool:
        return bool(self.seqs)

    def queue_order(self) -> list:
        return [getattr(r, "request_id", r) for r in self.sched.queue_order()]

    def stats(self) -> dict:
        """Counters since start, plus the scheduler's KV block counts (reserved blocks, the one count)."""
        s = dict(self._stats)
        sched = self.sched
        states = [seq.request.state for seq in self.seqs.values()]
        s.update(
            kv_blocks_used=sched.kv_device_blocks_used, kv_blocks_total=sched.config.kv_device_blocks,
            kv_host_blocks_used=sched.kv_host_blocks_used, kv_host_blocks_total=sched.config.kv_host_blocks,
            kv_block_size=sched.config.kv_block_size, kv_cached_blocks=self.kv.device_free.num_cached,
            kv_kept_blocks=self.kv.device_free.num_kept,
            running=states.count(RequestState.RUNNING), waiting=states.count(RequestState.WAITING),
            preempted=states.count(RequestState.PREEMPTED),
            tokens_per_s=(s["generated_tokens"] / s["busy_s"]) if s["busy_s"] > 0 else 0.0,
        )
        return s

    # ------------------------------------------------------------------ step
    def step(self) -> list[StepOutput]:
        started = self.clock()
        plan = self.sched.schedule(started)
        self._move_preempted_kv(plan)
        self._commit_prefix_hits(plan)
        if not plan.prefill and not plan.decode:
            self.sched.complete_step(self.clock(), finished_ids=())
            return []
        batch = self._prepare_batch(plan)
        new_token_ids, used_graph = self.runner.run(batch)
        self._register_written_blocks(plan)
        outputs, finished = self._append_tokens(batch.sampled_sequences, new_token_ids)
        ended = self.clock()
        self.sched.complete_step(ended, finished_ids=[seq.request.request_id for seq in finished])
        for seq in finished:
            self.kv.free(seq.request.request_id)
            self.seqs.pop(seq.request.request_id, None)
        self._count_step(ended - started, batch, len(new_token_ids), len(finished), used_graph)
        if self.config.check_invariants:
            self.check_invariants()
        return outputs

    def _move_preempted_kv(self, plan: StepPlan) -> None:
        """SWAP copies a preempted request's blocks to the host, RECOMPUTE frees them, KEEP leaves them;
        resumed swapped requests come back before the batch runs."""
        for req, action in plan.preempt:
            self._stats["preemptions"] += 1
            if action is PreemptAction.SWAP:
                self.kv.swap_out(req.request_id)
                self._stats["swaps_out"] += 1
            elif action is PreemptAction.RECOMPUTE:
                self.kv.free(req.request_id)
                self._stats["recomputes"] += 1
        for req in plan.swap_in:
            self.kv.swap_in(req.request_id)
            self._stats["swaps_in"] += 1

    # ------------------------------------------------------------------ prefix caching (prefix_cache.py)
    def _match_prefix(self, req: SchedRequest) -> int:
        """The scheduler's prefix_hit hook: a (re)prefill about to start takes its cached leading blocks.
        A RECOMPUTE re-prefill asks too, over prompt and generated tokens, and may hit its own old blocks."""
        seq = self.seqs[req.request_id]
        assert len(seq.token_ids) == req.prefill_target, (req, len(seq.token_ids))
        hit = self.kv.match_prefix(req.request_id, seq.token_ids)
        self._prefix_queries[req.request_id] = (req.prefill_target, hit)
        return hit

    def _commit_prefix_hits(self, plan: StepPlan) -> None:
        """Hits join their block tables once this step's preempted KV is released; a lookup counts in the
        stats when its (re)prefill's first chunk runs (a request left out of a step may be asked again)."""
        self.kv.commit_prefix_hits()
        queries = self._prefix_queries
        if queries:
            for req, _ in plan.prefill:
                asked = queries.pop(req.request_id, None)
                if asked is not None:
                    self._stats["prefix_cache_queried_tokens"] += asked[0]
                    self._stats["prefix_cache_hit_tokens"] += asked[1]

    def _register_written_blocks(self, plan: StepPlan) -> None:
        """After the forward pass: the blocks it filled hold their KV and may be shared from now on."""
        if not self.config.enable_prefix_caching:
            return
        register, seqs = self.kv.register_written, self.seqs
        for req in plan.decode:  # the fed token's KV is written: computed_tokens tokens in all
            register(req.request_id, seqs[req.request_id].token_ids, req.computed_tokens)
        for req, num_tokens in plan.prefill:
            register(req.request_id, seqs[req.request_id].token_ids, req.computed_tokens + num_tokens)

    def _prepare_batch(self, plan: StepPlan) -> StepBatch:
        batch = StepBatch()
        for req in plan.decode:
            self._prepare_decode(batch, req)
        for req, num_tokens in plan.prefill:
            self._prepare_prefill(batch, req, num_tokens)
        return batch

    def _prepare_decode(self, batch: StepBatch, req: SchedRequest) -> None:
        seq = self.seqs[req.request_id]
        # the scheduler counts the sampled-but-not-yet-fed token as computed: KV holds len-1 tokens
        assert req.computed_tokens == len(seq.token_ids), (req, len(seq.token_ids))
        position = len(seq.token_ids) - 1
        table = self.kv.ensure(req.request_id, position + 1)
        batch.add_decode(seq, position, table, self.kv.slot(table, position))

    def _prepare_prefill(self, batch: StepBatch, req: SchedRequest, num_tokens: int) -> None:
        seq = self.seqs[req.request_id]
        start = req.computed_tokens
        end = start + num_tokens
        assert 0 < num_tokens and end <= len(seq.token_ids), (req, start, num_tokens, len(seq.token_ids))
        table = self.kv.ensure(req.request_id, end)
        batch.add_prefill(seq, start, end, self.kv.context_slots(table, end))

    def _append_tokens(self, sequences: list[Sequence], new_token_ids: list[int]) -> tuple[list, list]:
        """Give each sampled token to its sequence; returns the step's outputs and the sequences that finished."""
        outputs: list[StepOutput] = []
        finished: list[Sequence] = []
        for seq, token_id in zip(sequences, new_token_ids):
            reason = seq.append_token(token_id, self.eos)
            if reason is not None:
                finished.append(seq)
            outputs.append(StepOutput(seq.request.request_id, [token_id], reason is not None, reason))
        return outputs, finished

    def _count_step(self, busy_s: float, batch: StepBatch, new_tokens: int, finished: int, used_graph: bool) -> None:
        stats = self._stats
        stats["steps"] += 1
        stats["graph_steps"] += 1 if used_graph else 0
        stats["prefill_tokens"] += sum(prefill.q_len for prefill in batch.prefills)
        stats["generated_tokens"] += new_tokens
        stats["finished"] += finished
        stats["busy_s"] += busy_s

    # ------------------------------------------------------------------ checks
    @staticmethod
    def kv_tokens(req: SchedRequest) -> int:
        """Tokens whose KV is actually in the cache.  The scheduler's ``computed_tokens`` also counts
        the last sampled token (not yet fed back) once a request has finished its (re)prefill."""
        return req.computed_tokens - 1 if req.computed_tokens > req.prefill_target else req.computed_tokens

    def check_invariants(self) -> None:
        """The cache's block tables agree with the scheduler's reservation: each request holds exactly the
        blocks its KV needs, never more than the scheduler reserved. With prefix caching a device block may be
        in several tables: its ref count must equal how many live requests' tables hold it, and every block is
        in use, cached or free (so a table left behind by a finished request shows up as a wrong ref count)."""
        kv, sched = self.kv, self.sched
        device_in_tables = host_in_tables = 0
        refs: dict[int, int] = {}
        assert not kv._hits, "prefix hits taken but never given a block table"
        for rid, seq in self.seqs.items():
            r = seq.request
            assert r.generated_tokens == seq.generated, (r, seq.generated)
            need = blocks_for(self.kv_tokens(r), kv.block_size)
            if r.kv_location is KVLocation.DEVICE:
                assert kv.device_blocks_of(rid) == need, (r, r.computed_tokens, kv.device_blocks_of(rid))
                assert need <= r.device_blocks, (r, need, r.device_blocks)
                assert rid not in kv.host_tables
                table = kv.block_tables.get(rid, ())
                assert len(set(table)) == len(table), (r, table)
                assert len(kv.block_hashes.get(rid, ())) <= len(table), r
                for block in table:
                    refs[block] = refs.get(block, 0) + 1
                device_in_tables += need
            elif r.kv_location is KVLocation.HOST:
                assert rid not in kv.block_tables, r
                assert len(kv.host_tables.get(rid, ())) == need <= r.host_blocks, r
                host_in_tables += need
            else:
                assert rid not in kv.block_tables and rid not in kv.host_tables, r
        assert set(kv.block_tables) <= set(self.seqs) and set(kv.host_tables) <= set(self.seqs), "leaked table"
        kv.device_free.check(refs)
        assert len(kv.device_free) + len(refs) == sched.config.kv_device_blocks, (len(kv.device_free), len(refs))
        assert len(kv.host_free) + host_in_tables == sched.config.kv_host_blocks, (len(kv.host_free), host_in_tables)
        assert device_in_tables <= sched.kv_device_blocks_used <= sched.config.kv_device_blocks
        assert host_in_tables <= sched.kv_host_blocks_used <= sched.config.kv_host_blocks
