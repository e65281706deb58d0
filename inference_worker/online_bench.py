"""Online benchmark: the seed's bursty arrivals fed in real time into the real engine.

    python -m inference_worker.bench --online --policy all --model tiny --seed 0-2
    python -m inference_worker.bench --online --policy all --model smollm2 --max-len 48 --gap-num 10

Every policy (and transformers' continuous batching, the status quo) sees identical arrivals: the simulator's
generator (`scheduler.workload`) with the same options, random prompt ids, EOS off so each request generates
exactly its drawn output length, and the engine told the true length (exact predictions, as `simulate`'s
default). A request arrives at its wall-clock instant; time to first token and end-to-end time run from there.

The paper's arrival rates suit its A100_4B cost model: a slower machine would drown in them and a faster one
would idle. So arrival gaps and first-token targets are multiplied by the time scale, this engine's measured
decode step over the cost model's step for the same batch and context, and the load relative to the machine is
the paper's on any CPU or GPU. The output states the scale; `--time-scale 1` runs the workload as given.
"""

from __future__ import annotations

import random
import time
from collections import deque

from scheduler.costmodel import SETTINGS
from scheduler.metrics import per_class_summary_columns
from scheduler.targets import first_token_targets
from scheduler.workload import WorkloadSpec, generate_workload

from .build import device_defaults
from .engine import Engine, EngineConfig

REFERENCE_SETTING = "A100_4B"
STATUS_QUO = "transformers CB"


def make_arrivals(args, seed: int, vocab: int) -> tuple[list, dict]:
    """The seed generator's requests and a random prompt of each one's length (identical for every system)."""
    spec = WorkloadSpec(user_request_gap=args.user_request_gap,
                        max_concurrent_user_requests=args.max_concurrent_user_requests, gap_num=args.gap_num,
                        max_prompt_length=args.max_len, max_output_length=args.max_len, seed=seed)
    requests = generate_workload(spec)
    rng = random.Random(seed)
    prompts = {r.request_id: [rng.randrange(3, min(vocab, 32000)) for _ in range(r.prompt_tokens)] for r in requests}
    return requests, prompts


def model_len(args) -> int:
    """The longest prompt plus the longest answer, with room to spare: what both systems size their KV for."""
    return 2 * args.max_len + 16


def engine_config(args, policy: str, device) -> EngineConfig:
    defaults = device_defaults(str(device))
    return EngineConfig(policy=policy, max_batch_size=args.max_batch_size, token_budget=args.token_budget,
                        kv_block_size=16, kv_cache_fraction=args.kv_fraction, max_model_len=model_len(args),
                        eos_token_ids=(), aging=args.aging, within_class_preemption=args.within_class_preemption,
                        prefill_token_weight=defaults.prefill_token_weight,
                        preemption_min_wait=defaults.preemption_min_wait)


def measure_time_scale(model, args, device) -> dict:
    """This engine's decode step at the benchmark's batch size, prompt max_len/2, over the reference cost model's."""
    batch, prompt_len = args.max_batch_size, max(1, args.max_len // 2)
    engine = Engine(model, engine_config(args, "fcfs", device), device=device)
    for i in range(batch):
        engine.add_request(("calibrate", i), [5 + (i + j) % 50 for j in range(prompt_len)], 0, 16, 16)
    steps = []
    while engine.has_work():
        started = time.perf_counter()
        outputs = engine.step()
        if len(outputs) == batch and all(len(o.new_token_ids) == 1 for o in outputs):
            steps.append(time.perf_counter() - started)
    warm = sorted(steps[2:] or steps)  # the first steps warm the allocator
    measured = warm[len(warm) // 2]
    reference = SETTINGS[REFERENCE_SETTING].decode_step(batch * (prompt_len + 8))
    scale = measured / reference if args.time_scale == "auto" else float(args.time_scale)
    return dict(scale=scale, measured_step_ms=1e3 * measured, reference_step_ms=1e3 * reference,
                reference=REFERENCE_SETTING, batch=batch, context=prompt_len + 8, chosen=args.time_scale)


def run_engine(model, policy: str, requests, prompts, scale: float, args, device) -> dict:
    engine = Engine(model, engine_config(args, policy, device), device=device)
    for i in range(3):  # allocator and kernels warm, not timed
        engine.add_request(("warm", i), [5 + j % 50 for j in range(args.max_len)], i, 8, 8)
    while engine.has_work():
        engine.step()
    pending = deque(sorted(requests, key=lambda r: (r.arrival_time, r.request_id)))
    first, last = {}, {}
    t0 = time.perf_counter()
    while pending or engine.has_work():
        now = time.perf_counter() - t0
        while pending and pending[0].arrival_time * scale <= now:
            r = pending.popleft()
            engine.add_request(r.request_id, prompts[r.request_id], r.predicted_urgency, r.predicted_output_tokens,
                               r.output_tokens, arrival_time=t0 + r.arrival_time * scale)
        if not engine.has_work():
            time.sleep(max(0.0, pending[0].arrival_time * scale - now))
            continue
        outputs = engine.step()
        done = time.perf_counter() - t0
        for output in outputs:
            first.setdefault(output.request_id, done)
            last[output.request_id] = done
    stats = engine.stats()
    return dict(system=policy, first=first, last=last, wall_s=time.perf_counter() - t0,
                preemptions=stats["preemptions"], generated_tokens=stats["generated_tokens"], steps=stats["steps"],
                busy_s=stats["busy_s"])


def run_transformers(model, requests, prompts, scale: float, args) -> dict:
    """transformers' continuous batching (its FIFO scheduler) on the same arrivals, fed from this thread, with the
    engine's batch size, token budget and KV room (sizing its cache itself took 19 s on this CPU)."""
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    config = GenerationConfig(max_new_tokens=args.max_len, do_sample=False, eos_token_id=-1, pad_token_id=0)
    block_size = 256
    sizes = ContinuousBatchingConfig(block_size=block_size, max_requests_per_batch=args.max_batch_size,
                                     max_batch_tokens=args.token_budget,
                                     num_blocks=args.max_batch_size * -(-model_len(args) // block_size))
    manager = model.init_continuous_batching(generation_config=config, continuous_batching_config=sizes)
    manager.start()
    first, last = {}, {}
    try:
        manager.add_request(list(range(5, 40)), request_id="warm", max_new_tokens=4, eos_token_id=-1)
        while (result := manager.get_result(timeout=120)) is not None and not result.is_finished():
            pass
        pending = deque(sorted(requests, key=lambda r: (r.arrival_time, r.request_id)))
        t0 = time.perf_counter()
        while len(last) < len(requests):
            now = time.perf_counter() - t0
            while pending and pending[0].arrival_time * scale <= now:
                r = pending.popleft()
                manager.add_request(prompts[r.request_id], request_id=f"r{r.request_id}",
                                    max_new_tokens=r.output_tokens, record_timestamps=True, eos_token_id=-1)
            wait = min(1.0, pending[0].arrival_time * scale - now) if pending else 1.0
            result = manager.get_result(timeout=max(0.001, wait))
            if result is None:
                if not manager.is_running():
                    raise RuntimeError("transformers continuous batching stopped")
                continue
            if result.error:
                raise RuntimeError(result.error)
            if result.is_finished() and result.request_id != "warm":
                request_id = int(result.request_id[1:])
                first[request_id] = result.timestamps[0] - t0
                last[request_id] = result.timestamps[-1] - t0
        wall = time.perf_counter() - t0
    finally:
        manager.stop(block=True, timeout=60)
        try:
            model.destroy_cached_continuous_batching_manager()
        except Exception:  # older transformers keep no cached manager
            pass
    return dict(system=STATUS_QUO, first=first, last=last, wall_s=wall, preemptions=0,
                generated_tokens=sum(r.output_tokens for r in requests))


def summarize(runs_by_seed: list[dict], system: str, scale: float) -> dict:
    """Per class (true urgency), over every given seed's requests: time to first token and end-to-end time from
    the wall-clock arrival, and the share of first tokens within the class's target stretched by the time scale."""
    urgencies, ttft, e2e = [], [], []
    for runs in runs_by_seed:
        run = runs[system]
        for r in runs["_requests"]:
            if r.request_id in run["last"]:
                urgencies.append(r.urgency)
                ttft.append(run["first"][r.request_id] - r.arrival_time * scale)
                e2e.append(run["last"][r.request_id] - r.arrival_time * scale)
    targets = tuple(t * scale for t in first_token_targets())
    return per_class_summary_columns(urgencies, {"waiting": ttft, "e2e": e2e}, targets)


def _seconds(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}" if base > 0 else "—"


def format_table(pooled: dict, systems: list[str]) -> str:
    lines = ["| class | system | TTFT mean s | TTFT p99 s | E2E mean s | E2E p99 s | TTFT mean / FCFS | "
             "E2E mean / FCFS | first token within target |", "|" + "---|" * 9]
    base = pooled.get("fcfs")
    for level in list(pooled[systems[0]]):
        for system in systems:
            summary = pooled[system][level]
            ttft, e2e, hit = summary["waiting"], summary["e2e"], summary["attainment"]
            share = "—" if hit["share"] is None else f"{hit['share']:.0%} ({hit['within']}/{hit['total']})"
            ratio_ttft = _ratio(ttft["mean"], base[level]["waiting"]["mean"]) if base else "—"
            ratio_e2e = _ratio(e2e["mean"], base[level]["e2e"]["mean"]) if base else "—"
            lines.append(f"| {level} | {system} | {ttft['mean']:.2f} | {ttft['p99']:.2f} | {e2e['mean']:.2f} | "
                         f"{e2e['p99']:.2f} | {ratio_ttft} | {ratio_e2e} | {share} |")
    return "\n".join(lines)


def run(model, args, device, seeds: list[int], policies: list[str], info: dict) -> dict:
    """Every seed: the time scale, then each policy and the status quo on that seed's arrivals."""
    calibration = measure_time_scale(model, args, device)
    scale = calibration["scale"]
    print(f"time scale {scale:.2f}: this engine's decode step {calibration['measured_step_ms']:.1f} ms against "
          f"{calibration['reference_step_ms']:.1f} ms in the {REFERENCE_SETTING} cost model (batch "
          f"{calibration['batch']}, context {calibration['context']}); arrivals {args.user_request_gap * scale:.3g} s "
          f"apart and first-token targets x{scale:.2f} ({', '.join(_seconds(t * scale) for t in first_token_targets())} s)",
          flush=True)
    vocab = model.config.vocab_size
    systems = list(policies) + ([] if args.skip_transformers else [STATUS_QUO])
    runs_by_seed, per_seed = [], {}
    for seed in seeds:
        requests, prompts = make_arrivals(args, seed, vocab)
        runs = {"_requests": requests}
        for policy in policies:
            runs[policy] = run_engine(model, policy, requests, prompts, scale, args, device)
            done = runs[policy]
            print(f"seed {seed}: {policy}: {len(requests)} requests in {done['wall_s']:.1f} s, {done['steps']} steps "
                  f"({done['busy_s']:.1f} s busy), {done['preemptions']} preemptions", flush=True)
        if not args.skip_transformers:
            runs[STATUS_QUO] = run_transformers(model, requests, prompts, scale, args)
            print(f"seed {seed}: {STATUS_QUO}: {runs[STATUS_QUO]['wall_s']:.1f} s", flush=True)
        runs_by_seed.append(runs)
        per_seed[seed] = {s: dict(summary=summarize([runs], s, scale), wall_s=runs[s]["wall_s"],
                                  preemptions=runs[s]["preemptions"], steps=runs[s].get("steps")) for s in systems}
        per_seed[seed]["requests"] = len(requests)
    pooled = {s: summarize(runs_by_seed, s, scale) for s in systems}
    print()
    print(format_table(pooled, systems))
    print_level0_by_seed(per_seed, seeds, systems)
    return dict(info=info, time_scale=calibration, seeds=seeds, systems=systems, pooled=pooled, per_seed=per_seed)


def print_level0_by_seed(per_seed: dict, seeds: list[int], systems: list[str]) -> None:
    if "fcfs" not in systems:
        return
    for seed in seeds:
        base = per_seed[seed]["fcfs"]["summary"]["0"]["waiting"]["mean"]
        cells = ", ".join(f"{s} {_ratio(per_seed[seed][s]['summary']['0']['waiting']['mean'], base)}"
                          for s in systems if s != "fcfs")
        print(f"seed {seed}: level-0 mean time to first token against FCFS ({base:.2f} s): {cells}")
