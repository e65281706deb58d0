"""Benchmark: the engine vs transformers (continuous batching ``generate_batch`` machinery and
static-batch ``generate``) in one process, on one seeded workload.

    python -m inference_worker.bench --model qwen3-4b --requests 256 --seed 0
    python -m inference_worker.bench --model tiny --requests 32        # CPU
    python -m inference_worker.bench --online --policy all --model tiny --seed 0-2   # see online_bench.py

Workload: prompt and output lengths uniform 1..--max-len (500), urgency uniform 0..4, random
prompt token ids, all requests arriving at t=0 (the engine gets the true output length as its
prediction; EOS is disabled everywhere so every system generates exactly the same tokens count).
Reports generated tokens/s, time to first token (mean, p99) per urgency class, the engine's ratio
to transformers, and the engine's decode step at batch 64 (context 512) against the memory
bandwidth floor (weight bytes + KV bytes over the measured device copy bandwidth).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import sys
import time

import torch

from scheduler import POLICIES, blocks_for, targets
from scheduler.cli_args import parse_seeds
from scheduler.metrics import percentile
from scheduler.urgency import LEAST_URGENT, LEVELS, MOST_URGENT, NUM_LEVELS

from .engine import Engine, EngineConfig
from .model_loading import load_model


def make_workload(n: int, seed: int, max_len: int, vocab: int):
    rng = random.Random(seed)
    reqs = []
    for i in range(n):
        plen = rng.randint(1, max_len)
        olen = rng.randint(1, max_len)
        urg = rng.randint(MOST_URGENT, LEAST_URGENT)
        prompt = [rng.randrange(3, min(vocab, 32000)) for _ in range(plen)]
        reqs.append(dict(id=i, prompt=prompt, out=olen, urgency=urg))
    return reqs


def summarize(name, reqs, ttft: dict, tokens: int, wall: float, extra=None):
    """Per class: time to first token and target attainment (the share within TRIAGE_FIRST_TOKEN_TARGETS_S)."""
    out = dict(system=name, generated_tokens=tokens, wall_s=wall, tok_per_s=tokens / wall if wall > 0 else 0.0,
               ttft={})
    attainment = targets.attainment([(r["urgency"], ttft[r["id"]]) for r in reqs if r["id"] in ttft],
                                    targets.first_token_targets())
    for u in LEVELS:
        xs = [ttft[r["id"]] for r in reqs if r["urgency"] == u and r["id"] in ttft]
        out["ttft"][u] = dict(n=len(xs), mean_ms=1e3 * sum(xs) / len(xs) if xs else float("nan"),
                              p99_ms=1e3 * percentile(sorted(xs), 99) if xs else float("nan"),
                              within_target=attainment[u]["share"])
    out.update(extra or {})
    return out


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


# ---------------------------------------------------------------------------- engine
def run_engine(model, reqs, args, device):
    n = len(reqs)
    cfg = EngineConfig(policy=args.policy, max_batch_size=min(args.max_batch_size, max(n, 1)),
                       token_budget=args.token_budget, kv_block_size=16, kv_cache_fraction=args.kv_fraction,
                       max_model_len=max(2 * args.max_len + 16, 528), eos_token_ids=(), aging=args.aging)
    if device.type == "cpu":  # room for the batch-64 x 512 decode measurement as well
        cfg.kv_device_blocks = max(cfg.max_batch_size, 64) * blocks_for(cfg.max_model_len, cfg.kv_block_size)
    t = time.perf_counter()
    engine = Engine(model, cfg, device=device)
    setup_s = time.perf_counter() - t
    # warm-up (Triton compilation, allocator): a few requests, not timed
    for i in range(4):
        engine.add_request(f"w{i}", list(range(5, 5 + 37 * (i + 1))), urgency=i, predicted_output_tokens=8,
                           max_new_tokens=8)
    while engine.has_work():
        engine.step()
    sync(device)
    base = dict(engine.stats())
    t0 = time.perf_counter()
    for r in reqs:
        engine.add_request(r["id"], r["prompt"], r["urgency"], r["out"], r["out"], arrival_time=t0)
    ttft, tokens = {}, 0
    while engine.has_work():
        outs = engine.step()
        now = time.perf_counter()
        for o in outs:
            tokens += len(o.new_token_ids)
            if o.request_id not in ttft:
                ttft[o.request_id] = now - t0
    sync(device)
    wall = time.perf_counter() - t0
    st = engine.stats()
    extra = dict(setup_s=setup_s, steps=st["steps"] - base["steps"], graph_steps=st["graph_steps"] - base["graph_steps"],
                 preemptions=st["preemptions"] - base["preemptions"], kv_blocks_total=st["kv_blocks_total"],
                 policy=args.policy, max_batch_size=cfg.max_batch_size, token_budget=cfg.token_budget)
    res = summarize("engine", reqs, ttft, tokens, wall, extra)
    res["decode_b64"] = decode_step_bench(engine, model, device, batch=64, ctx=512)
    return res, engine


def copy_bandwidth(device) -> float:
    nbytes = (1 << 30) if device.type == "cuda" else (1 << 27)
    a = torch.empty(nbytes // 2, dtype=torch.float16, device=device).normal_()
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    sync(device)
    reps = 20 if device.type == "cuda" else 5
    t = time.perf_counter()
    for _ in range(reps):
        b.copy_(a)
    sync(device)
    dt = (time.perf_counter() - t) / reps
    del a, b
    return 2 * nbytes / dt  # bytes read + written


def decode_step_bench(engine: Engine, model, device, batch=64, ctx=512):
    """Time one decode step (graph replay on CUDA, eager forward on CPU) of ``batch`` sequences
    with ``ctx`` tokens of context each, against the weights+KV bandwidth floor."""
    kv, runner = engine.kv, engine.runner
    if len(kv.device_free) < batch * blocks_for(ctx, kv.block_size):
        return dict(skipped="not enough KV blocks")
    bs = kv.block_size
    tables = [kv.ensure(("bench", i), ctx) for i in range(batch)]
    ids = [7] * batch
    pos = [ctx - 1] * batch
    slots = [kv.slot(t, ctx - 1) for t in tables]
    cl = [ctx] * batch
    with torch.inference_mode():
        bucket = runner.graph_bucket(batch) if runner.graphs else None
        bt = runner.block_table_tensor(tables, full_width=bucket is not None)
        if bucket is not None:
            fn = lambda: runner.run_decode_graph(bucket, ids, pos, slots, bt, cl)  # noqa: E731
        else:
            from .engine.model_runner import AttnMeta
            meta = AttnMeta(num_decodes=batch, block_tables=torch.from_numpy(bt).to(device),
                            context_lens=torch.tensor(cl, dtype=torch.int32, device=device))
            t_ids = torch.tensor(ids, device=device)
            t_pos = torch.tensor(pos, device=device)
            t_slots = torch.tensor(slots, device=device)
            fn = lambda: runner.forward(t_ids, t_pos, t_slots, meta)  # noqa: E731
        for _ in range(3):
            fn()
        sync(device)
        reps = 50 if device.type == "cuda" else 5
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            sync(device)
            times.append(time.perf_counter() - t)
    for i in range(batch):
        kv.free(("bench", i))
    step = sorted(times)[len(times) // 2]
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    kv_bytes = batch * ctx * kv.bytes_per_block // bs
    bw = copy_bandwidth(device)
    floor = (weight_bytes + kv_bytes) / bw
    return dict(batch=batch, context=ctx, step_ms=1e3 * step, floor_ms=1e3 * floor, ratio_to_floor=step / floor,
                weight_bytes=weight_bytes, kv_bytes=kv_bytes, copy_bandwidth_GBps=bw / 1e9,
                graph=bucket is not None)


# ---------------------------------------------------------------------------- transformers
def run_hf_continuous(model, reqs, device, max_len):
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    gcfg = GenerationConfig(max_new_tokens=max_len, do_sample=False, eos_token_id=-1, pad_token_id=0)
    cbc = None
    if device.type == "cuda":
        cbc = ContinuousBatchingConfig(use_cuda_graph=True, use_async_batching=True)
    manager = model.init_continuous_batching(generation_config=gcfg, continuous_batching_config=cbc)
    manager.start()
    try:
        # warm-up request (not timed)
        manager.add_request(list(range(5, 40)), request_id="warm", max_new_tokens=4, eos_token_id=-1)
        while True:
            r = manager.get_result(timeout=120)
            if r is None or (r.request_id == "warm" and r.is_finished()):
                break
        t0 = time.perf_counter()
        for r in reqs:
            manager.add_request(r["prompt"], request_id=f"r{r['id']}", max_new_tokens=r["out"],
                                record_timestamps=True, eos_token_id=-1)
        done, ttft, tokens = 0, {}, 0
        deadline = time.time() + 3600
        while done < len(reqs) and time.time() < deadline:
            res = manager.get_result(timeout=5)
            if res is None:
                if not manager.is_running():
                    raise RuntimeError("transformers continuous batching stopped")
                continue
            if not res.is_finished():
                continue
            if res.error:
                raise RuntimeError(res.error)
            rid = int(res.request_id[1:])
            done += 1
            tokens += len(res.generated_tokens)
            if res.timestamps:
                ttft[rid] = res.timestamps[0] - t0
        wall = time.perf_counter() - t0
    finally:
        manager.stop(block=True, timeout=60)
        try:
            model.destroy_cached_continuous_batching_manager()
        except Exception:
            pass
    extra = dict(config="cuda_graph+async" if cbc is not None else "defaults", completed=done)
    return summarize("transformers generate_batch (CB)", reqs, ttft, tokens, wall, extra)


def run_hf_static(model, reqs, device, batch_size):
    from transformers import StoppingCriteria, StoppingCriteriaList

    class FirstToken(StoppingCriteria):
        def __init__(self):
            self.t = None

        def __call__(self, input_ids, scores, **kw):
            if self.t is None:
                sync(device)
                self.t = time.perf_counter()
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    t0 = time.perf_counter()
    ttft, tokens = {}, 0
    for i in range(0, len(reqs), batch_size):
        chunk = reqs[i:i + batch_size]
        L = max(len(r["prompt"]) for r in chunk)
        ids = torch.zeros(len(chunk), L, dtype=torch.long)
        mask = torch.zeros(len(chunk), L, dtype=torch.long)
        for j, r in enumerate(chunk):
            ids[j, L - len(r["prompt"]):] = torch.tensor(r["prompt"])
            mask[j, L - len(r["prompt"]):] = 1
        first = FirstToken()
        new = max(r["out"] for r in chunk)
        with torch.inference_mode():
            model.generate(ids.to(device), attention_mask=mask.to(device), max_new_tokens=new, min_new_tokens=new,
                           do_sample=False, eos_token_id=None, pad_token_id=0,
                           stopping_criteria=StoppingCriteriaList([first]))
        sync(device)
        tokens += sum(r["out"] for r in chunk)  # useful tokens only (padding to the batch max not counted)
        for r in chunk:
            ttft[r["id"]] = first.t - t0
    wall = time.perf_counter() - t0
    return summarize(f"transformers generate (static batch {batch_size})", reqs, ttft, tokens, wall,
                     dict(requests=len(reqs)))


# ---------------------------------------------------------------------------- report
def _share(value):
    return "—" if value is None else f"{value:.0%}"


def format_table(results, hf_ref):
    lines = []
    head = "| system | requests | gen tokens | wall s | tok/s | x transformers CB | " + \
        " | ".join(f"TTFT u{u} mean/p99 ms, in target" for u in LEVELS) + " |"
    lines.append(head)
    lines.append("|" + "---|" * (6 + NUM_LEVELS))
    for r in results:
        ratio = r["tok_per_s"] / hf_ref["tok_per_s"] if hf_ref and hf_ref["tok_per_s"] else float("nan")
        nreq = sum(v["n"] for v in r["ttft"].values())
        cells = " | ".join(f"{v['mean_ms']:.0f} / {v['p99_ms']:.0f}, {_share(v.get('within_target'))}"
                           for v in r["ttft"].values())
        lines.append(f"| {r['system']} | {nreq} | {r['generated_tokens']} | {r['wall_s']:.2f} | "
                     f"{r['tok_per_s']:.0f} | {ratio:.2f} | {cells} |")
    return "\n".join(lines)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="tiny | qwen3-0.6b | qwen3-4b | smollm2 | model dir")
    ap.add_argument("--requests", type=int, default=256)
    ap.add_argument("--seed", type=parse_seeds, default=[0], help="one seed (offline); --online: 0-2 or 0,1,2 too")
    ap.add_argument("--policy", default="semantic", choices=POLICIES + ("all",),
                    help="all (--online only): fcfs, sjf, pjf and semantic on identical arrivals")
    ap.add_argument("--aging", action="store_true")
    ap.add_argument("--max-len", type=int, default=500, help="prompt and output lengths uniform 1..max-len")
    ap.add_argument("--max-batch-size", type=int, default=None, help="default 256, or 16 (the paper's) with --online")
    ap.add_argument("--token-budget", type=int, default=2048)
    ap.add_argument("--kv-fraction", type=float, default=0.5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--skip-transformers", action="store_true")
    ap.add_argument("--skip-static", action="store_true")
    ap.add_argument("--static-requests", type=int, default=64,
                    help="static-batch generate runs on the first N requests of the workload (slow)")
    ap.add_argument("--static-batch", type=int, default=32)
    ap.add_argument("--json", default=None, help="write results here (default bench-<model>.json)")
    online = ap.add_argument_group("online (the seed's bursty arrivals in real time; see inference_worker/online_bench.py)")
    online.add_argument("--online", action="store_true")
    online.add_argument("--user-request-gap", type=float, default=1.0, help="seconds between arrival instants")
    online.add_argument("--max-concurrent-user-requests", type=int, default=5,
                        help="each arrival instant brings randint(0, this) requests")
    online.add_argument("--gap-num", type=int, default=20, help="number of arrival instants")
    online.add_argument("--within-class-preemption", action="store_true",
                        help="semantic: shortest remaining work first inside a class (docs/scheduler.md)")
    online.add_argument("--time-scale", default="auto",
                        help="multiply arrival gaps and targets by this; auto: this engine's decode step over the "
                             "A100_4B cost model's, so the load relative to the machine is the paper's")
    args = ap.parse_args(argv)
    if args.max_batch_size is None:
        args.max_batch_size = 16 if args.online else 256
    problems = []
    if not args.online and (args.policy == "all" or len(args.seed) > 1):
        problems.append("--policy all and several seeds need --online")
    if args.time_scale != "auto":
        try:
            if not float(args.time_scale) > 0:
                raise ValueError
        except ValueError:
            problems.append(f"--time-scale must be auto or a positive number, got {args.time_scale!r}")
    if args.user_request_gap < 0 or args.max_concurrent_user_requests < 0 or args.gap_num < 1 or args.max_len < 1:
        problems.append("--user-request-gap and --max-concurrent-user-requests must be >= 0, --gap-num and "
                        "--max-len >= 1")
    if problems:
        ap.error("; ".join(problems))
    return args


def main(argv=None):
    args = parse_args(argv)
    device = torch.device("cuda" if (args.device == "auto" and torch.cuda.is_available()) else
                          ("cpu" if args.device == "auto" else args.device))
    t = time.perf_counter()
    model, _ = load_model(args.model, device, with_tokenizer=False, seed=args.seed[0])
    load_s = time.perf_counter() - t
    info = dict(model=args.model, requests=args.requests, seed=args.seed, policy=args.policy, device=str(device),
                gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
                torch=torch.__version__, python=platform.python_version(), load_s=load_s,
                dtype=str(model.dtype), params=sum(p.numel() for p in model.parameters()),
                date=time.strftime("%Y-%m-%d"), command=" ".join(["python -m inference_worker.bench"] + (argv or sys.argv[1:])))
    import transformers
    info["transformers"] = transformers.__version__
    print(json.dumps(info), flush=True)
    if args.online:
        return main_online(model, args, device, info)
    reqs = make_workload(args.requests, args.seed[0], args.max_len, model.config.vocab_size)
    results = []
    eng, engine = run_engine(model, reqs, args, device)
    results.append(eng)
    print(f"engine: {eng['tok_per_s']:.0f} tok/s, {eng['wall_s']:.2f} s, decode b64: {eng['decode_b64']}", flush=True)
    del engine
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    hf = None
    if not args.skip_transformers:
        try:
            hf = run_hf_continuous(model, reqs, device, args.max_len)
            results.append(hf)
            print(f"transformers CB: {hf['tok_per_s']:.0f} tok/s, {hf['wall_s']:.2f} s", flush=True)
        except Exception as e:  # report, do not hide
            print(f"transformers continuous batching failed: {type(e).__name__}: {e}", flush=True)
            results.append(dict(system="transformers generate_batch (CB)", error=f"{type(e).__name__}: {e}"))
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if not args.skip_static:
            sub = reqs[:args.static_requests]
            st = run_hf_static(model, sub, device, args.static_batch)
            results.append(st)
            print(f"transformers static: {st['tok_per_s']:.0f} tok/s on {len(sub)} requests", flush=True)

    ok = [r for r in results if "error" not in r]
    print()
    print(format_table(ok, hf if hf and "error" not in hf else None))
    d = eng["decode_b64"]
    if "step_ms" in d:
        print(f"\ndecode step, batch {d['batch']} x context {d['context']}: {d['step_ms']:.2f} ms "
              f"(floor {d['floor_ms']:.2f} ms = {d['weight_bytes'] / 1e9:.2f} GB weights + {d['kv_bytes'] / 1e9:.2f} GB KV "
              f"at {d['copy_bandwidth_GBps']:.0f} GB/s copy bandwidth; {d['ratio_to_floor']:.2f}x floor; "
              f"{'CUDA graph' if d['graph'] else 'eager'})")
    if hf and "error" not in hf:
        print(f"engine / transformers CB: {eng['tok_per_s'] / hf['tok_per_s']:.2f}x")
    path = args.json or f"bench-{args.model.replace('/', '_')}.json"
    with open(path, "w") as f:
        json.dump(dict(info=info, results=results), f, indent=2, default=str)
    print(f"wrote {path}")


def main_online(model, args, device, info):
    from . import online_bench

    info.update(user_request_gap=args.user_request_gap, max_concurrent_user_requests=args.max_concurrent_user_requests,
                gap_num=args.gap_num, max_len=args.max_len, max_batch_size=args.max_batch_size)
    policies = list(POLICIES) if args.policy == "all" else [args.policy]
    result = online_bench.run(model, args, device, args.seed, policies, info)
    path = args.json or f"bench-online-{args.model.replace('/', '_')}.json"
    with open(path, "w") as f:
        json.dump(result, f, indent=2, default=str)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
