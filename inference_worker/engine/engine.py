"""The continuous-batching engine: scheduler-driven steps over the paged KV cache.

A step: the scheduler plans it, the engine moves preempted requests' KV (swap out, free, swap in),
prepares one flat batch (decodes, then prefill chunks), the model runner samples the next tokens,
and the engine appends them, reports them and tells the scheduler which requests finished.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from scheduler import KVLocation, PreemptAction, RequestState, SchedRequest, Scheduler, StepPlan, blocks_for

from .batch import StepBatch
from .config import EngineConfig
from .kv_cache import PagedKVCache, kv_bytes_per_block
from .model_runner import ModelRunner
from .sequence import Sequence


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
                               num_device_blocks, config.kv_host_blocks, self.dtype, self.device)
        self.runner = ModelRunner(model, self.kv, self.device, self.max_model_len)
        self.sched = Scheduler(config.scheduler_config(num_device_blocks))
        self.eos = set(int(t) for t in (config.eos_token_ids or ()))
        self.seqs: dict[object, Sequence] = {}
        self._stats = dict(steps=0, graph_steps=0, generated_tokens=0, prefill_tokens=0, busy_s=0.0,
                           preemptions=0, swaps_out=0, swaps_in=0, recomputes=0, finished=0, cancelled=0)
        if self.device.type == "cuda" and config.use_cuda_graphs:
            sizes = config.graph_batch_sizes or _default_graph_sizes(config.max_batch_size)
            with torch.inference_mode():
                self.runner.capture_graphs(sorted(set(min(s, config.max_batch_size) for s in sizes)))

    def _device_block_count(self, num_layers: int, num_kv_heads: int, head_dim: int) -> int:
        """config.kv_device_blocks; else a kv_cache_fraction of free CUDA memory; else (CPU) enough for a
        full batch at max length."""
        config = self.config
        if config.kv_device_blocks is not None:
            return config.kv_device_blocks
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            bytes_per_block = kv_bytes_per_block(num_layers, num_kv_heads, head_dim, config.kv_block_size, self.dtype)
            return int(free * config.kv_cache_fraction) // bytes_per_block
        return config.max_batch_size * blocks_for(self.max_model_len, config.kv_block_size)

    # ------------------------------------------------------------------ requests
    @staticmethod
    def clock() -> float:
        return time.perf_counter()

    def add_request(self, request_id, prompt_token_ids: list[int], urgency: int, predicted_output_tokens: int,
                    max_new_tokens: int, arrival_time: float | None = None) -> None:
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
        self.seqs[request_id] = Sequence(req, prompt, int(max_new_tokens))

    def set_urgency(self, request_id, urgency: int) -> None:
        self.sched.set_urgency(request_id, urgency)

    def cancel(self, request_id) -> None:
        if request_id not in self.seqs:
            return
        self.sched.cancel(request_id)
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
            kv_block_size=sched.config.kv_block_size,
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
        if not plan.prefill and not plan.decode:
            self.sched.complete_step(self.clock(), finished_ids=())
            return []
        batch = self._prepare_batch(plan)
        new_token_ids, used_graph = self.runner.run(batch)
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
        blocks its KV needs, never more than the scheduler reserved, and every block id is free or in one table."""
        kv, sched = self.kv, self.sched
        device_in_tables = host_in_tables = 0
        for rid, seq in self.seqs.items():
            r = seq.request
            assert r.generated_tokens == seq.generated, (r, seq.generated)
            need = blocks_for(self.kv_tokens(r), kv.block_size)
            if r.kv_location is KVLocation.DEVICE:
                assert kv.device_blocks_of(rid) == need, (r, r.computed_tokens, kv.device_blocks_of(rid))
                assert need <= r.device_blocks, (r, need, r.device_blocks)
                assert rid not in kv.host_tables
                device_in_tables += need
            elif r.kv_location is KVLocation.HOST:
                assert rid not in kv.block_tables, r
                assert len(kv.host_tables.get(rid, ())) == need <= r.host_blocks, r
                host_in_tables += need
            else:
                assert rid not in kv.block_tables and rid not in kv.host_tables, r
        assert len(kv.device_free) + device_in_tables == sched.config.kv_device_blocks, \
            (len(kv.device_free), device_in_tables)
        assert len(kv.host_free) + host_in_tables == sched.config.kv_host_blocks, (len(kv.host_free), host_in_tables)
        assert device_in_tables <= sched.kv_device_blocks_used <= sched.config.kv_device_blocks
        assert host_in_tables <= sched.kv_host_blocks_used <= sched.config.kv_host_blocks
