"""GPU self-check (run on a CUDA machine): Triton paged decode kernel vs the torch reference, and
engine greedy output (CUDA graphs on) vs ``model.generate`` for a tiny random model.

    python -m inference_worker.engine.gpu_check
"""

from __future__ import annotations

import random

import torch

from .attention import paged_decode_torch, paged_decode_triton


def check_kernel(dtype=torch.bfloat16, B=37, H=32, KVH=8, D=128, bs=16, nblocks=4096, maxctx=1100):
    dev = "cuda"
    kc = torch.randn(nblocks * bs, KVH, D, device=dev, dtype=dtype)
    vc = torch.randn(nblocks * bs, KVH, D, device=dev, dtype=dtype)
    q = torch.randn(B, H, D, device=dev, dtype=dtype)
    cl = torch.randint(1, maxctx, (B,), device=dev, dtype=torch.int32)
    W = -(-maxctx // bs)
    perm = torch.randperm(nblocks - 1, device=dev)[: B * W].view(B, W).to(torch.int32) + 1
    scale = D ** -0.5
    ref = paged_decode_torch(q.double(), kc.double(), vc.double(), perm, cl, bs, scale)
    out = paged_decode_triton(q, kc, vc, perm, cl, bs, scale)
    err = ((out.double() - ref).norm() / ref.norm()).item()
    return err


def check_engine():
    from inference_worker.engine import Engine, EngineConfig
    from inference_worker.models import build_random_model, random_config

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


if __name__ == "__main__":
    for shape in [dict(), dict(B=1, maxctx=20), dict(B=64, H=16, KVH=8), dict(B=5, H=4, KVH=2, D=32)]:
        print("kernel", shape, "rel err", check_kernel(**shape))
    print("kernel fp32 rel err", check_kernel(torch.float32))
    same, n, tok, ntok, st = check_engine()
    print(f"engine vs generate (fp32, graphs): {same}/{n} requests identical, {tok}/{ntok} tokens; "
          f"graph steps {st['graph_steps']} of {st['steps']}")
