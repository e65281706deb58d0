"""Model runner: executes a transformers Llama/Qwen3-family model over a flat, varlen batch
(decode tokens first, then prefill chunks) with attention over the paged KV cache.

The runner uses the transformers model's own modules (embeddings, RMSNorms, q/k/v/o projections,
q_norm/k_norm for Qwen3, MLP, lm_head, rotary inverse frequencies) and replaces only the
attention and the cache.  On CUDA, decode-only steps replay CUDA graphs captured per bucketed
batch size; mixed or prefill steps and the CPU path run the same ``forward`` eagerly.
``run`` takes one step's ``StepBatch`` (batch.py) and returns its sampled tokens: a plain argmax unless a
sequence in the step has sampling settings (sampling.py), then the sampled rows' logits go through each
such sequence's settings (sampler.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch

from scheduler import blocks_for

from .attention import paged_decode_torch, paged_decode_triton, prefill_attention, rmsnorm_triton, triton
from .kv_cache import PagedKVCache
from .sampler import sample


@dataclass
class PrefillSeq:
    q_start: int        # offset of the chunk in the flat token batch
    q_len: int
    ctx_len: int        # context length after the chunk (chunk included)
    ctx_slots: torch.Tensor | None = None  # cache slots of the whole context (None: chunk starts at 0)


@dataclass
class AttnMeta:
    num_decodes: int = 0
    block_tables: torch.Tensor | None = None   # [num_decodes(, padded), W] int32
    context_lens: torch.Tensor | None = None   # [num_decodes(, padded)] int32
    prefills: list[PrefillSeq] = field(default_factory=list)


def _rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class ModelRunner:
    def __init__(self, model, kv: PagedKVCache, device, max_model_len: int, use_triton: bool | None = None):
        self.model = model
        self.kv = kv
        self.device = torch.device(device)
        cfg = model.config
        self.config = cfg
        inner = model.model
        self.embed_tokens = inner.embed_tokens
        self.layers = list(inner.layers)
        self.norm = inner.norm
        self.lm_head = model.lm_head
        attn0 = self.layers[0].self_attn
        self.num_heads = cfg.num_attention_heads
        self.num_kv_heads = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.scale = float(getattr(attn0, "scaling", self.head_dim ** -0.5))
        self.has_qk_norm = hasattr(attn0, "q_norm")
        self.dtype = self.embed_tokens.weight.dtype
        self.max_model_len = max_model_len
        self.block_size = kv.block_size
        self.max_blocks_per_seq = blocks_for(max_model_len, kv.block_size)
        if use_triton is None:
            use_triton = self.device.type == "cuda" and triton is not None
        self.decode_attn = paged_decode_triton if use_triton else paged_decode_torch
        # fused RMSNorm (one Triton kernel instead of ~6 elementwise ones) on the GPU path
        self.fused_norm = use_triton and os.environ.get("TRIAGE_ENGINE_FUSED_NORM", "1") != "0"
        # rotary table computed by the model's own rotary module, position by position
        with torch.inference_mode():
            pos = torch.arange(max_model_len, device=self.device)[None]
            dummy = torch.zeros(1, dtype=self.dtype, device=self.device)
            cos, sin = inner.rotary_emb(dummy, pos)
        self.cos = cos[0].contiguous()
        self.sin = sin[0].contiguous()
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.graph_bs: list[int] = []

    def _norm(self, module, x):
        if self.fused_norm:
            return rmsnorm_triton(x, module.weight, module.variance_epsilon)
        return module(x)

    # ------------------------------------------------------------------ one step
    def run(self, batch) -> tuple[list[int], bool]:
        """Next tokens of the step's StepBatch (batch.py) at its sampled rows, and whether a CUDA graph
        ran the step (decode-only steps, when graphs were captured for a bucket that fits)."""
        with torch.inference_mode():
            bucket = self.graph_bucket(batch.num_decodes) if (not batch.prefills and self.graphs) else None
            if bucket is not None:
                block_tables = self.block_table_tensor(batch.decode_block_tables, full_width=True)
                logits, greedy = self.run_decode_graph(bucket, batch.token_ids, batch.positions, batch.slots,
                                                       block_tables, batch.decode_context_lens)
            else:
                logits = self._run_eager(batch)
                greedy = torch.argmax(logits, dim=-1) if logits is not None else None
            if greedy is None:
                return [], False
            return sample(logits, greedy, batch.sampled_sequences), bucket is not None

    def _run_eager(self, batch):
        """``forward`` on freshly built tensors: the sampled rows' logits; None when no row is sampled
        (a step of partial prefills)."""
        dev = self.device
        t_ids = torch.tensor(batch.token_ids, dtype=torch.long).to(dev, non_blocking=True)
        t_pos = torch.tensor(batch.positions, dtype=torch.long).to(dev, non_blocking=True)
        t_slots = torch.tensor(batch.slots, dtype=torch.long).to(dev, non_blocking=True)
        meta = AttnMeta(num_decodes=batch.num_decodes, prefills=batch.prefills)
        if batch.num_decodes:
            meta.block_tables = torch.from_numpy(self.block_table_tensor(batch.decode_block_tables)).to(dev)
            meta.context_lens = torch.tensor(batch.decode_context_lens, dtype=torch.int32).to(dev)
        for prefill, context_slots in zip(batch.prefills, batch.prefill_context_slots):
            if context_slots is not None:
                prefill.ctx_slots = torch.from_numpy(context_slots).to(dev)
        rows = batch.sampled_rows
        if not rows:  # still run the step: it writes the chunks' KV
            self.forward(t_ids, t_pos, t_slots, meta, torch.zeros(1, dtype=torch.long, device=dev))
            return None
        logits_idx = None if len(rows) == len(batch.token_ids) else torch.tensor(rows, dtype=torch.long).to(dev)
        return self.forward(t_ids, t_pos, t_slots, meta, logits_idx)

    def forward(self, input_ids, positions, slots, meta: AttnMeta, logits_idx=None):
        """Returns the next-token logits of rows ``logits_idx`` (all rows if None)."""
        T = input_ids.shape[0]
        H, KVH, D = self.num_heads, self.num_kv_heads, self.head_dim
        cos = self.cos[positions][:, None, :]
        sin = self.sin[positions][:, None, :]
        x = self.embed_tokens(input_ids)
        nd = meta.num_decodes
        for li, layer in enumerate(self.layers):
            attn = layer.self_attn
            h = self._norm(layer.input_layernorm, x)
            q = attn.q_proj(h).view(T, H, D)
            k = attn.k_proj(h).view(T, KVH, D)
            v = attn.v_proj(h).view(T, KVH, D)
            if self.has_qk_norm:
                q = self._norm(attn.q_norm, q)
                k = self._norm(attn.k_norm, k)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            kc, vc = self.kv.k_layers[li], self.kv.v_layers[li]
            kc.index_copy_(0, slots, k)
            vc.index_copy_(0, slots, v)
            if not meta.prefills:
                o = self.decode_attn(q, kc, vc, meta.block_tables, meta.context_lens, self.block_size, self.scale)
            else:
                parts = []
                if nd:
                    parts.append(self.decode_attn(q[:nd], kc, vc, meta.block_tables, meta.context_lens,
                                                  self.block_size, self.scale))
                for p in meta.prefills:
                    qs = q[p.q_start:p.q_start + p.q_len]
                    if p.ctx_slots is None:
                        ks, vs = k[p.q_start:p.q_start + p.q_len], v[p.q_start:p.q_start + p.q_len]
                    else:
                        ks, vs = kc[p.ctx_slots], vc[p.ctx_slots]
                    parts.append(prefill_attention(qs, ks, vs, p.ctx_len, self.scale))
                o = parts[0] if len(parts) == 1 else torch.cat(parts, 0)
            x = x + attn.o_proj(o.reshape(T, H * D))
            x = x + layer.mlp(self._norm(layer.post_attention_layernorm, x))
        if logits_idx is not None:
            x = x[logits_idx]
        return self.lm_head(self._norm(self.norm, x))

    # ------------------------------------------------------------------ metadata
    def block_table_tensor(self, tables: list[list[int]], rows: int | None = None,
                           full_width: bool = False) -> np.ndarray:
        """Rows of block ids, zero-padded. CUDA graphs need the fixed full width; the eager path takes
        only as many columns as the longest sequence, since the torch attention gathers every column."""
        rows = rows or len(tables)
        width = self.max_blocks_per_seq if full_width else max((len(t) for t in tables), default=1)
        bt = np.zeros((rows, width), dtype=np.int32)
        for i, t in enumerate(tables):
            bt[i, :len(t)] = t
        return bt

    # ------------------------------------------------------------------ CUDA graphs
    def capture_graphs(self, batch_sizes: list[int]) -> None:
        if self.device.type != "cuda":
            return
        bmax = max(batch_sizes)
        dev = self.device
        self.g_ids = torch.zeros(bmax, dtype=torch.long, device=dev)
        self.g_pos = torch.zeros(bmax, dtype=torch.long, device=dev)
        self.g_slots = torch.zeros(bmax, dtype=torch.long, device=dev)  # slot 0.. = scratch block 0
        self.g_bt = torch.zeros(bmax, self.max_blocks_per_seq, dtype=torch.int32, device=dev)
        self.g_cl = torch.ones(bmax, dtype=torch.int32, device=dev)
        # one logits buffer every graph writes its rows to (per-graph outputs would each hold bucket x vocab)
        self.g_logits = torch.empty(bmax, self.lm_head.weight.shape[0], dtype=self.dtype, device=dev)
        self.g_out = {}
        pool = None
        for bs in sorted(batch_sizes, reverse=True):
            meta = AttnMeta(num_decodes=bs, block_tables=self.g_bt[:bs], context_lens=self.g_cl[:bs])
            args = (self.g_ids[:bs], self.g_pos[:bs], self.g_slots[:bs], meta)
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(2):
                    self.forward(*args)
            torch.cuda.current_stream().wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g, pool=pool):
                logits = self.forward(*args)
                self.g_logits[:bs].copy_(logits)
                self.g_out[bs] = torch.argmax(logits, dim=-1)
            pool = g.pool()
            self.graphs[bs] = g
        self.graph_bs = sorted(batch_sizes)
        torch.cuda.synchronize()

    def graph_bucket(self, n: int) -> int | None:
        for b in self.graph_bs:
            if b >= n:
                return b
        return None

    def run_decode_graph(self, bucket: int, ids, pos, slots, bt: np.ndarray, cl) -> tuple[torch.Tensor, torch.Tensor]:
        """The first n rows' logits and their argmax, both outputs of the captured graph."""
        n = len(ids)
        self.g_ids[:n].copy_(torch.as_tensor(ids), non_blocking=True)
        self.g_pos[:n].copy_(torch.as_tensor(pos), non_blocking=True)
        self.g_slots[:n].copy_(torch.as_tensor(slots), non_blocking=True)
        self.g_cl[:n].copy_(torch.as_tensor(cl, dtype=torch.int32), non_blocking=True)
        self.g_bt[:n].copy_(torch.from_numpy(bt), non_blocking=True)
        if bucket > n:  # padding rows: write into the scratch block, attend to one token
            self.g_slots[n:bucket].zero_()
            self.g_cl[n:bucket].fill_(1)
            self.g_bt[n:bucket].zero_()
        self.graphs[bucket].replay()
        return self.g_logits[:n], self.g_out[bucket][:n]
