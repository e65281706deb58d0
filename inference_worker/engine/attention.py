"""Attention over the paged KV cache.

* ``paged_decode_torch``: reference decode attention (one query per sequence) in plain torch:
  gathers each sequence's blocks through its block table and masks past the context length.
  Used on CPU and as the check for the Triton kernel.
* ``paged_decode_triton``: Triton kernel for the same (GPU); one program per (sequence, KV head),
  all query heads of the GQA group at once, online softmax over the sequence's blocks.
* ``prefill_attention``: one prefill chunk of one sequence against its whole context (the chunk's
  own K/V are already in the cache), causal, through ``F.scaled_dot_product_attention``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

# Not cuDNN: it builds a new cuDNN graph (~1.7 ms of CPU) for every new (query, context) shape,
# and prefill chunks have a new shape nearly every call.
_SDPA_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]

try:  # Triton is optional: only the GPU path uses it
    import triton
    import triton.language as tl
except Exception:  # pragma: no cover - CPU-only machines without triton
    triton = None
    tl = None


def paged_decode_torch(q, k_cache, v_cache, block_tables, context_lens, block_size, scale):
    """q: [B, H, D]; k/v_cache: [slots, KVH, D]; block_tables: [B, W] int; context_lens: [B]."""
    B, H, D = q.shape
    KVH = k_cache.shape[1]
    G = H // KVH
    W = block_tables.shape[1]
    offs = torch.arange(block_size, device=q.device)
    slots = (block_tables.long()[:, :, None] * block_size + offs).reshape(B, W * block_size)
    k = k_cache[slots]  # [B, N, KVH, D]
    v = v_cache[slots]
    mask = torch.arange(W * block_size, device=q.device)[None, :] < context_lens.long()[:, None]
    qg = q.view(B, KVH, G, D)
    scores = torch.einsum("bkgd,bnkd->bkgn", qg, k) * scale
    scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    probs = torch.softmax(scores.float(), dim=-1).to(q.dtype)
    out = torch.einsum("bkgn,bnkd->bkgd", probs, v)
    return out.reshape(B, H, D)


def prefill_attention(q, k, v, context_len, scale):
    """q: [Lq, H, D] (the last Lq positions of the context); k, v: [context_len, KVH, D]."""
    Lq, H, D = q.shape
    KVH = k.shape[1]
    if KVH != H:
        k = k.repeat_interleave(H // KVH, dim=1)
        v = v.repeat_interleave(H // KVH, dim=1)
    qt, kt, vt = q.transpose(0, 1)[None], k.transpose(0, 1)[None], v.transpose(0, 1)[None]
    with sdpa_kernel(_SDPA_BACKENDS):
        if Lq == context_len:
            out = F.scaled_dot_product_attention(qt, kt, vt, is_causal=True, scale=scale)
        else:
            start = context_len - Lq
            qpos = torch.arange(start, context_len, device=q.device)[:, None]
            kpos = torch.arange(context_len, device=q.device)[None, :]
            out = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=kpos <= qpos, scale=scale)
    return out[0].transpose(0, 1)


if triton is not None:

    @triton.jit
    def _paged_decode_kernel(Q, K, V, BT, CL, O,
                             stride_qb, stride_qh, stride_ks, stride_kh, stride_btb, stride_ob, stride_oh,
                             scale,
                             G: tl.constexpr, GP: tl.constexpr, HD: tl.constexpr,
                             BS: tl.constexpr, BLOCK_N: tl.constexpr):
        b = tl.program_id(0)
        kvh = tl.program_id(1)
        ctx = tl.load(CL + b)
        offs_g = tl.arange(0, GP)
        offs_d = tl.arange(0, HD)
        offs_n = tl.arange(0, BLOCK_N)
        gmask = offs_g < G
        heads = kvh * G + offs_g
        q = tl.load(Q + b * stride_qb + heads[:, None] * stride_qh + offs_d[None, :],
                    mask=gmask[:, None], other=0.0)
        m_i = tl.full([GP], float("-inf"), tl.float32)
        l_i = tl.zeros([GP], tl.float32)
        acc = tl.zeros([GP, HD], tl.float32)
        for start in range(0, ctx, BLOCK_N):
            n = start + offs_n
            nmask = n < ctx
            blk = tl.load(BT + b * stride_btb + n // BS, mask=nmask, other=0)
            slot = blk.to(tl.int64) * BS + n % BS
            kv_off = slot[:, None] * stride_ks + kvh * stride_kh + offs_d[None, :]
            k = tl.load(K + kv_off, mask=nmask[:, None], other=0.0)
            s = tl.dot(q, tl.trans(k)) * scale
            s = tl.where(nmask[None, :], s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            alpha = tl.exp(m_i - m_new)
            p = tl.exp(s - m_new[:, None])
            l_i = l_i * alpha + tl.sum(p, 1)
            v = tl.load(V + kv_off, mask=nmask[:, None], other=0.0)
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
            m_i = m_new
        l_i = tl.where(l_i == 0.0, 1.0, l_i)
        out = acc / l_i[:, None]
        tl.store(O + b * stride_ob + heads[:, None] * stride_oh + offs_d[None, :],
                 out.to(O.dtype.element_ty), mask=gmask[:, None])


    @triton.jit
    def _paged_decode_split_kernel(Q, K, V, BT, CL, OP, MP, LP,
                                   stride_qb, stride_qh, stride_ks, stride_kh, stride_btb,
                                   scale,
                                   H: tl.constexpr, NS: tl.constexpr, G: tl.constexpr, GP: tl.constexpr,
                                   HD: tl.constexpr, BS: tl.constexpr, BLOCK_N: tl.constexpr,
                                   PART: tl.constexpr):
        """Flash-decoding: program (b, kvh, split) covers context [split*PART, (split+1)*PART)."""
        b = tl.program_id(0)
        kvh = tl.program_id(1)
        sp = tl.program_id(2)
        ctx = tl.load(CL + b)
        lo = sp * PART
        offs_g = tl.arange(0, GP)
        offs_d = tl.arange(0, HD)
        offs_n = tl.arange(0, BLOCK_N)
        gmask = offs_g < G
        heads = kvh * G + offs_g
        part_off = (b * NS + sp) * H + heads           # row of the [B, NS, H] partials
        hi = tl.minimum(ctx, lo + PART)
        q = tl.load(Q + b * stride_qb + heads[:, None] * stride_qh + offs_d[None, :],
                    mask=gmask[:, None], other=0.0)
        m_i = tl.full([GP], float("-inf"), tl.float32)
        l_i = tl.zeros([GP], tl.float32)
        acc = tl.zeros([GP, HD], tl.float32)
        for start in range(lo, hi, BLOCK_N):
            n = start + offs_n
            nmask = n < hi
            blk = tl.load(BT + b * stride_btb + n // BS, mask=nmask, other=0)
            slot = blk.to(tl.int64) * BS + n % BS
            kv_off = slot[:, None] * stride_ks + kvh * stride_kh + offs_d[None, :]
            k = tl.load(K + kv_off, mask=nmask[:, None], other=0.0)
            v = tl.load(V + kv_off, mask=nmask[:, None], other=0.0)
            s = tl.dot(q, tl.trans(k)) * scale
            s = tl.where(nmask[None, :], s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            alpha = tl.exp(m_i - m_new)
            p = tl.exp(s - m_new[:, None])
            l_i = l_i * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
            m_i = m_new
        tl.store(MP + part_off, m_i, mask=gmask)
        tl.store(LP + part_off, l_i, mask=gmask)
        tl.store(OP + part_off[:, None] * HD + offs_d[None, :], acc, mask=gmask[:, None])

    @triton.jit
    def _paged_decode_reduce_kernel(OP, MP, LP, O, stride_ob, stride_oh,
                                    H: tl.constexpr, NS: tl.constexpr, NSP: tl.constexpr, HD: tl.constexpr):
        b = tl.program_id(0)
        h = tl.program_id(1)
        offs_s = tl.arange(0, NSP)
        offs_d = tl.arange(0, HD)
        smask = offs_s < NS
        rows = (b * NS + offs_s) * H + h
        m = tl.load(MP + rows, mask=smask, other=float("-inf"))
        l = tl.load(LP + rows, mask=smask, other=0.0)
        mmax = tl.max(m, 0)
        w = tl.exp(m - mmax)
        w = tl.where(smask, w, 0.0)
        o = tl.load(OP + rows[:, None] * HD + offs_d[None, :], mask=smask[:, None], other=0.0)
        num = tl.sum(o * w[:, None], 0)
        den = tl.sum(l * w, 0)
        den = tl.where(den == 0.0, 1.0, den)
        tl.store(O + b * stride_ob + h * stride_oh + offs_d, (num / den).to(O.dtype.element_ty))


SPLIT_PART = 256  # context tokens per program in the split (flash-decoding) kernel


def paged_decode_triton(q, k_cache, v_cache, block_tables, context_lens, block_size, scale, split=False):
    B, H, D = q.shape
    KVH = k_cache.shape[1]
    G = H // KVH
    GP = max(16, triton.next_power_of_2(G))
    out = torch.empty_like(q)
    max_ctx = block_tables.shape[1] * block_size
    ns = -(-max_ctx // SPLIT_PART)
    if not split or ns <= 1:
        _paged_decode_kernel[(B, KVH)](
            q, k_cache, v_cache, block_tables, context_lens, out,
            q.stride(0), q.stride(1), k_cache.stride(0), k_cache.stride(1), block_tables.stride(0),
            out.stride(0), out.stride(1), scale,
            G=G, GP=GP, HD=D, BS=block_size, BLOCK_N=64, num_warps=4, num_stages=2)
        return out
    op = torch.empty(B, ns, H, D, dtype=torch.float32, device=q.device)
    mp = torch.empty(B, ns, H, dtype=torch.float32, device=q.device)
    lp = torch.empty(B, ns, H, dtype=torch.float32, device=q.device)
    _paged_decode_split_kernel[(B, KVH, ns)](
        q, k_cache, v_cache, block_tables, context_lens, op, mp, lp,
        q.stride(0), q.stride(1), k_cache.stride(0), k_cache.stride(1), block_tables.stride(0), scale,
        H=H, NS=ns, G=G, GP=GP, HD=D, BS=block_size, BLOCK_N=64, PART=SPLIT_PART, num_warps=4, num_stages=2)
    _paged_decode_reduce_kernel[(B, H)](op, mp, lp, out, out.stride(0), out.stride(1),
                                        H=H, NS=ns, NSP=triton.next_power_of_2(ns), HD=D, num_warps=4)
    return out


if triton is not None:

    @triton.jit
    def _rmsnorm_kernel(X, W, Y, stride_x, stride_y, N, eps, BLOCK: tl.constexpr):
        row = tl.program_id(0)
        offs = tl.arange(0, BLOCK)
        mask = offs < N
        x = tl.load(X + row * stride_x + offs, mask=mask, other=0.0).to(tl.float32)
        var = tl.sum(x * x, 0) / N
        y = (x * tl.rsqrt(var + eps)).to(Y.dtype.element_ty)
        w = tl.load(W + offs, mask=mask, other=0.0)
        tl.store(Y + row * stride_y + offs, (w.to(tl.float32) * y.to(tl.float32)).to(Y.dtype.element_ty), mask=mask)


def rmsnorm_triton(x, weight, eps):
    """Same arithmetic as transformers' Llama/Qwen3 RMSNorm (fp32 statistics, cast, then weight) in one kernel."""
    shape = x.shape
    x2 = x.reshape(-1, shape[-1])
    y = torch.empty_like(x2)
    n = shape[-1]
    _rmsnorm_kernel[(x2.shape[0],)](x2, weight, y, x2.stride(0), y.stride(0), n, eps,
                                    BLOCK=triton.next_power_of_2(n), num_warps=4 if n <= 1024 else 8)
    return y.view(shape)
