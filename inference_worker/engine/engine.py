"""The continuous-batching engine: scheduler-driven steps over the paged KV cache."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from scheduler import PreemptAction, SchedRequest, Scheduler, SchedulerConfig

from .kv_cache import PagedKVCache
from .runner import AttnMeta, ModelRunner, PrefillSeq


@dataclass
class EngineConfig:
    policy: str = "semantic"
    max_batch_size: int = 64
    token_budget: int = 2048
    kv_block_size: int = 16
    kv_cache_fraction: float = 0.5      # of free device memory (CUDA) when kv_device_blocks is None
    kv_device_blocks: int | None = None
    kv_host_blocks: int = 0
    eos_token_ids: tuple[int, ...] | list[int] = ()
    aging: bool = False
    preemption: bool = True
    max_model_len: int | None = None    # default: min(model max positions, 4096)
    use_cuda_graphs: bool = True
    graph_batch_sizes: list[int] | None = None
    check_invariants: bool = False      # assert block accounting == scheduler's every step (tests)
    scheduler_options: dict = field(default_factory=dict)  # extra SchedulerConfig fields


@dataclass
class StepOutput:
    request_id: object
    new_token_ids: list[int]
    finished: bool
    finish_reason: str | None = None   # "eos" | "length" | None


class _Seq:
    __slots__ = ("req", "tokens", "prompt_len", "max_new", "generated")

    def __init__(self, req, prompt, max_new):
        self.req = req
        self.tokens = list(prompt)
        self.prompt_len = len(prompt)
        self.max_new = max_new
        self.generated = 0


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
        bs = config.kv_block_size
        bytes_per_block = 2 * cfg.num_hidden_layers * bs * cfg.num_key_value_heads * head_dim * \
            torch.empty((), dtype=self.dtype).element_size()
        if config.kv_device_blocks is not None:
            nblocks = config.kv_device_blocks
        elif self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            nblocks = int(free * config.kv_cache_fraction) // bytes_per_block
        else:  # CPU: enough for a full batch at max length
            nblocks = config.max_batch_size * (-(-self.max_model_len // bs))
        self.kv = PagedKVCache(cfg.num_hidden_layers, cfg.num_key_value_heads, head_dim, bs, nblocks,
                               config.kv_host_blocks, self.dtype, self.device)
        self.runner = ModelRunner(model, self.kv, self.device, self.max_model_len)
        self.sched = Scheduler(SchedulerConfig(
            policy=config.policy, max_batch_size=config.max_batch_size, token_budget=config.token_budget,
            kv_block_size=bs, kv_device_blocks=nblocks, kv_host_blocks=config.kv_host_blocks,
            aging=config.aging, preemption=config.preemption, **config.scheduler_options))
        self.eos = set(int(t) for t in (config.eos_token_ids or ()))
        self.seqs: dict[object, _Seq] = {}
        self._stats = dict(steps=0, graph_steps=0, generated_tokens=0, prefill_tokens=0, busy_s=0.0,
                           preemptions=0, swaps_out=0, swaps_in=0, recomputes=0, finished=0, cancelled=0)
        if self.device.type == "cuda" and config.use_cuda_graphs:
            sizes = config.graph_batch_sizes or _default_graph_sizes(config.max_batch_size)
            with torch.inference_mode():
                self.runner.capture_graphs(sorted(set(min(s, config.max_batch_size) for s in sizes)))

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
        self.seqs[request_id] = _Seq(req, prompt, int(max_new_tokens))

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
        s = dict(self._stats)
        states = [q.req.state for q in self.seqs.values()]
        s.update(
            kv_blocks_used=self.kv.device_pool.num_used, kv_blocks_total=self.kv.device_pool.total,
            kv_host_blocks_used=self.kv.host_pool.num_used, kv_host_blocks_total=self.kv.host_pool.total,
            kv_block_size=self.kv.block_size,
            running=states.count("running"), waiting=states.count("waiting"),
            preempted=states.count("preempted"),
            tokens_per_s=(s["generated_tokens"] / s["busy_s"]) if s["busy_s"] > 0 else 0.0,
        )
        return s

    # ------------------------------------------------------------------ step
    def step(self) -> list[StepOutput]:
        t0 = self.clock()
        plan = self.sched.schedule(t0)
        kv = self.kv
        for req, action in plan.preempt:
            rid = req.request_id
            self._stats["preemptions"] += 1
            if action == PreemptAction.SWAP:
                kv.swap_out(rid)
                self._stats["swaps_out"] += 1
            elif action == PreemptAction.RECOMPUTE:
                kv.free(rid)
                self._stats["recomputes"] += 1
            # KEEP: blocks stay where they are
        for req in plan.swap_in:
            kv.swap_in(req.request_id)
            self._stats["swaps_in"] += 1
        if not plan.prefill and not plan.decode:
            self.sched.complete_step(self.clock(), finished_ids=())
            return []

        bs = kv.block_size
        ids: list[int] = []
        pos: list[int] = []
        slots: list[int] = []
        emit: list[_Seq] = []      # sequences that get a new token, in logits-row order
        rows: list[int] = []
        dec_tables, dec_cl = [], []
        for req in plan.decode:
            s = self.seqs[req.request_id]
            # the scheduler counts the sampled-but-not-yet-fed token as computed: KV holds len-1 tokens
            assert req.computed_tokens == len(s.tokens), (req, len(s.tokens))
            p = len(s.tokens) - 1
            table = kv.ensure(req.request_id, p + 1)
            ids.append(s.tokens[p])
            pos.append(p)
            slots.append(table[p // bs] * bs + p % bs)
            dec_tables.append(table)
            dec_cl.append(p + 1)
            rows.append(len(rows))
            emit.append(s)
        nd = len(plan.decode)
        prefills: list[PrefillSeq] = []
        ctx_slot_lists = []
        for req, n in plan.prefill:
            s = self.seqs[req.request_id]
            start = req.computed_tokens
            end = start + n
            assert 0 < n and end <= len(s.tokens), (req, start, n, len(s.tokens))
            table = kv.ensure(req.request_id, end)
            tb = np.asarray(table, dtype=np.int64)
            ppos = np.arange(start, end)
            q_start = len(ids)
            ids.extend(s.tokens[start:end])
            pos.extend(ppos.tolist())
            slots.extend((tb[ppos // bs] * bs + ppos % bs).tolist())
            cpos = np.arange(end)
            ctx_slot_lists.append(None if start == 0 else tb[cpos // bs] * bs + cpos % bs)
            prefills.append(PrefillSeq(q_start, n, end))
            self._stats["prefill_tokens"] += n
            if end == len(s.tokens):
                rows.append(q_start + n - 1)
                emit.append(s)

        runner = self.runner
        dev = self.device
        with torch.inference_mode():
            bucket = runner.graph_bucket(nd) if (not prefills and runner.graphs) else None
            if bucket is not None:
                bt = runner.block_table_tensor(dec_tables, full_width=True)
                out = runner.run_decode_graph(bucket, ids, pos, slots, bt, dec_cl)
                self._stats["graph_steps"] += 1
            else:
                t_ids = torch.tensor(ids, dtype=torch.long).to(dev, non_blocking=True)
                t_pos = torch.tensor(pos, dtype=torch.long).to(dev, non_blocking=True)
                t_slots = torch.tensor(slots, dtype=torch.long).to(dev, non_blocking=True)
                meta = AttnMeta(num_decodes=nd, prefills=prefills)
                if nd:
                    meta.block_tables = torch.from_numpy(runner.block_table_tensor(dec_tables)).to(dev)
                    meta.context_lens = torch.tensor(dec_cl, dtype=torch.int32).to(dev)
                for p, cs in zip(prefills, ctx_slot_lists):
                    if cs is not None:
                        p.ctx_slots = torch.from_numpy(cs).to(dev)
                logits_idx = None if len(rows) == len(ids) else torch.tensor(rows, dtype=torch.long).to(dev)
                if not rows:
                    out = None
                else:
                    out = runner.forward(t_ids, t_pos, t_slots, meta, logits_idx)
                if out is None:  # pure partial-prefill step: still run it for the KV
                    runner.forward(t_ids, t_pos, t_slots, meta, torch.zeros(1, dtype=torch.long, device=dev))
            new_tokens = out.tolist() if out is not None else []

        outputs: list[StepOutput] = []
        finished_ids = []
        done: list[tuple[_Seq, str]] = []
        for s, tok in zip(emit, new_tokens):
            s.tokens.append(tok)
            s.generated += 1
            reason = None
            if tok in self.eos:
                reason = "eos"
            elif s.generated >= s.max_new:
                reason = "length"
            if reason:
                finished_ids.append(s.req.request_id)
                done.append((s, reason))
            outputs.append(StepOutput(s.req.request_id, [tok], reason is not None, reason))
        t1 = self.clock()
        self.sched.complete_step(t1, finished_ids=finished_ids)
        for s, _ in done:
            rid = s.req.request_id
            kv.free(rid)
            self.seqs.pop(rid, None)
        self._stats["finished"] += len(done)
        self._stats["steps"] += 1
        self._stats["generated_tokens"] += len(new_tokens)
        self._stats["busy_s"] += t1 - t0
        if self.config.check_invariants:
            self.check_invariants()
        return outputs

    @staticmethod
    def kv_tokens(req) -> int:
        """Tokens whose KV is actually in the cache.  The scheduler's ``computed_tokens`` also counts
        the last sampled token (not yet fed back) once a request has finished its (re)prefill."""
        return req.computed_tokens - 1 if req.computed_tokens > req._prefill_target else req.computed_tokens

    def check_invariants(self) -> None:
        """Block accounting agrees with the scheduler's: each request holds exactly the blocks its
        KV needs, never more than the scheduler reserved for it, and the totals match."""
        kv = self.kv
        total = 0
        for rid, s in self.seqs.items():
            r = s.req
            assert r.generated_tokens == s.generated, (r, s.generated)
            need = kv.blocks_needed(self.kv_tokens(r))
            if r.kv_location == "device":
                assert kv.device_blocks_of(rid) == need, (r, r.computed_tokens, kv.device_blocks_of(rid))
                assert need <= r._device_blocks, (r, need, r._device_blocks)
                assert rid not in kv.host_tables
                total += need
            elif r.kv_location == "host":
                assert rid not in kv.block_tables, r
                assert len(kv.host_tables.get(rid, ())) == need <= r._host_blocks, r
            else:
                assert rid not in kv.block_tables and rid not in kv.host_tables, r
        assert kv.device_pool.num_used == total, (kv.device_pool.num_used, total)
        assert total <= self.sched.kv_device_blocks_used <= self.sched.config.kv_device_blocks
        assert kv.host_pool.num_used <= self.sched.kv_host_blocks_used <= max(self.sched.config.kv_host_blocks, 0)
