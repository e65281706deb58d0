"""GPU self-check (run on a CUDA machine): Triton paged decode kernel vs the torch reference, and
engine greedy output (CUDA graphs on) vs ``model.generate`` for a tiny random model.

    python -m benchmarks.gpu_check            # the checks
    python -m benchmarks.gpu_check profile    # kernel timings and a profiled Qwen3-4B-shape engine run

Run from the repository root (benchmarks/ is a namespace package, not an installed one).
"""

from __future__ import annotations

import random
import sys

import torch

from inference_worker.engine.attention import paged_decode_torch, paged_decode_triton, rmsnorm_triton
from scheduler import blocks_for


def check_kernel(dtype=torch.bfloat16, B=37, H=32, KVH=8, D=128, bs=16, maxctx=1100, split=True):
    dev = "cuda"
    nblocks = B * blocks_for(maxctx, bs) + 1
    kc = torch.randn(nblocks * bs, KVH, D, device=dev, dtype=dtype)
    vc = torch.randn(nblocks * bs, KVH, D, device=dev, dtype=dtype)
    q = torch.randn(B, H, D, device=dev, dtype=dtype)
    cl = torch.randint(1, maxctx, (B,), device=dev, dtype=torch.int32)
    W = blocks_for(maxctx, bs)
    perm = torch.randperm(nblocks - 1, device=dev)[: B * W].view(B, W).to(torch.int32) + 1
    scale = D ** -0.5
    ref = paged_decode_torch(q.double(), kc.double(), vc.double(), perm, cl, bs, scale)
    out = paged_decode_triton(q, kc, vc, perm, cl, bs, scale, split=split)
    err = ((out.double() - ref).norm() / ref.norm()).item()
    return err


def check_engine():
    from inference_worker.engine import Engine, EngineConfig
    from inference_worker.model_loading import build_random_model, random_config

    torch.backends.cuda.matmul.allow_tf32 = False
    m = build_random_model(random_config("tiny", vocab_size=1024), "cuda", torch.float32)
    rng = random.Random(0)
    prompts = [[rng.randrange(1024) for _ in range(rng.randint(1, 60))] for _ in range(12)]
    news = [rng.randint(1, 40) for _ in prompts]
    refs = [m.generate(torch.tensor([p], device="cuda"), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                       eos_token_id=None, pad_token_id=0)[0, len(p):].tolist() for p, n in zip(prompts, news)]
    e = Engine(m, EngineConfig(max_batch_size=8, token_budget=32, kv_device_blocks=256, check_invariants=True),
               device="cuda")
    for i, (p, n) in enumerate(zip(prompts, news)):
        e.add_request(i, p, i % 5, n, n)
    got = {i: [] for i in range(len(prompts))}
    while e.has_work():
        for o in e.step():
            got[o.request_id] += o.new_token_ids
    same = sum(got[i] == refs[i] for i in range(len(prompts)))
    tok = sum(a == b for i in range(len(prompts)) for a, b in zip(got[i], refs[i]))
    return same, len(prompts), tok, sum(news), e.stats()


def time_kernels():
    import triton.testing as tt
    for B, ctx in [(64, 512), (256, 700), (8, 1000)]:
        H, KVH, D, bs = 32, 8, 128, 16
        W = blocks_for(1016, bs)
        n = B * W + 1
        kc = torch.randn(n * bs, KVH, D, device="cuda", dtype=torch.bfloat16)
        vc = torch.randn_like(kc)
        q = torch.randn(B, H, D, device="cuda", dtype=torch.bfloat16)
        bt = (torch.randperm(n - 1, device="cuda")[: B * W].view(B, W) + 1).to(torch.int32)
        cl = torch.full((B,), ctx, device="cuda", dtype=torch.int32)
        kvbytes = B * ctx * KVH * D * 2 * 2
        for split in (False, True):
            ms = tt.do_bench(lambda: paged_decode_triton(q, kc, vc, bt, cl, bs, 0.088, split=split), return_mode="median")
            print(f"decode kernel B={B} ctx={ctx} split={split}: {ms*1e3:.0f} us, {kvbytes/ms/1e6:.0f} GB/s (x36 layers: {36*ms:.2f} ms)")


def profile_engine(steps=4):
    from inference_worker.bench import make_workload
    from inference_worker.engine import Engine, EngineConfig
    from inference_worker.model_loading import load_model
    import time as _t
    model, _ = load_model("qwen3-4b", "cuda", with_tokenizer=False)
    e = Engine(model, EngineConfig(max_batch_size=256, token_budget=2048, max_model_len=1016), device="cuda")
    reqs = make_workload(256, 0, 500, model.config.vocab_size)
    for i in range(3):
        e.add_request(f"w{i}", list(range(5, 300)), 0, 4, 4)
    while e.has_work():
        e.step()
    torch.cuda.synchronize()
    for r in reqs:
        e.add_request(r["id"], r["prompt"], r["urgency"], r["out"], r["out"])
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            t = _t.perf_counter(); e.step(); torch.cuda.synchronize()
            print(f"profiled mixed step {(_t.perf_counter() - t) * 1e3:.1f} ms")
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14, max_name_column_width=60))
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=14, max_name_column_width=60))
    times = []
    while e.has_work():
        t = _t.perf_counter(); nb = e.sched.num_running
        e.step(); torch.cuda.synchronize()
        times.append(((_t.perf_counter() - t) * 1e3, nb))
    print("step ms (first 40 after profile):", [f"{a:.0f}/{b}" for a, b in times[:40]])
    print("step ms every 25th:", [f"{a:.1f}/{b}" for a, b in times[::25]])
    print("total after profile", sum(a for a, _ in times) / 1e3, "s", e.stats())


if __name__ == "__main__":
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks.gpu_check needs a CUDA device")
    if "profile" in sys.argv:
        time_kernels()
        profile_engine()
        sys.exit(0)
    for shape in [dict(), dict(B=1, maxctx=20), dict(B=64, H=16, KVH=8), dict(B=5, H=4, KVH=2, D=32),
                  dict(split=False), dict(B=3, maxctx=300, split=False)]:
        print("kernel", shape, "rel err", check_kernel(**shape))
    errs = [check_kernel(), check_kernel(B=1, maxctx=20)]
    print("kernel fp32 rel err", check_kernel(torch.float32))
    from transformers.models.qwen3.modeling_qwen3 import Qwen3RMSNorm
    norm_err = 0.0
    for shape in [(7, 2560), (300, 8, 128), (3, 1024)]:
        mod = Qwen3RMSNorm(shape[-1], eps=1e-6).cuda().to(torch.bfloat16)
        mod.weight.data.normal_()
        x = torch.randn(*shape, device="cuda", dtype=torch.bfloat16)
        ref, out = mod(x), rmsnorm_triton(x, mod.weight, mod.variance_epsilon)
        e = ((out.float() - ref.float()).norm() / ref.float().norm()).item()
        norm_err = max(norm_err, e)
        print("rmsnorm", shape, "rel err", e, "exact" if torch.equal(out, ref) else "")
    if max(errs) > 2e-2 or norm_err > 1e-2:
        raise SystemExit("GPU check FAILED")
    same, n, tok, ntok, st = check_engine()
    print(f"engine vs generate (fp32, graphs): {same}/{n} requests identical, {tok}/{ntok} tokens; "
          f"graph steps {st['graph_steps']} of {st['steps']}")
