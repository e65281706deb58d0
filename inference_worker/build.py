"""Builds the inference service (model, engine, scheduler, store) from settings or from arguments."""
import logging
from dataclasses import dataclass

logger = logging.getLogger("inference_worker")


@dataclass(frozen=True)
class DeviceDefaults:
    """What an unset ("auto") setting becomes on one kind of device."""

    max_batch_size: int
    urgent_batch_size: int | None   # batch cap while urgency-0 work runs (None: off)
    max_answer_tokens: int
    token_budget: int               # tokens a step may run (prefill chunks + decodes)
    prefill_token_weight: float     # a prompt token's machine time over an output token's (remaining work)
    preemption_min_wait: float      # no urgency preemption while a running request is this close to finishing


# CPU, from benchmarks/cpu_batch.py (SmolLM2-135M fp32, 2 cores; docs/benchmarks.md): one request decodes at
# ~11 tokens/s; a batch of 8 gives ~5x the aggregate at ~0.6x the per-request speed, 16 only ~7x at ~0.4x. So a
# batch of 8, a batch of 1 while urgency-0 work runs (its answer gets every core), and 200-token answers: 400 at
# ~11 tokens/s would take ~37 s, over the 30 s target for a level-0 answer. Steps of at most 512 tokens: prefill
# runs at ~300 tokens/s, so a 2,048-token step would hold an arriving level-0 request for ~6 s. Remaining work
# in machine time: a prompt token holds the cores ~3.3 ms, an output token is one of 8 in a ~150 ms step (~19 ms).
# An urgent arrival always preempts: 16 steps of ~150 ms would be most of its 2 s first-token target.
# The CPU KV pool's cap (TRIAGE_KV_CACHE_MAX_MB has the same default): a full batch of 8 at 1,224 positions with
# SmolLM2 is 616 blocks, 433 MB, so the cap does not bind for the packaged model, and the pool holds every
# protocol card's prompt prefix (~470 blocks) beside one longest request, so the worker keeps them all warm.
CPU_KV_CACHE_MAX_MB = 512
CPU_DEFAULTS = DeviceDefaults(max_batch_size=8, urgent_batch_size=1, max_answer_tokens=200, token_budget=512,
                              prefill_token_weight=0.2, preemption_min_wait=0)
# CUDA: decoding is memory-bound, so a big batch costs each answer little. A prompt token holds the GPU ~1/100 of
# a decode step (the A100_4B cost model's c2p/c2d, 0.0088), which 64 requests share: 64 x 0.0088 ~ 0.5.
# No urgency preemption while a slot frees within 16 steps (~0.2-0.5 s): the simulator's default, chosen on its
# grid (docs/scheduler.md), not measured on a GPU.
CUDA_DEFAULTS = DeviceDefaults(max_batch_size=64, urgent_batch_size=None, max_answer_tokens=400, token_budget=2048,
                               prefill_token_weight=0.5, preemption_min_wait=16)


def pick_device(requested):
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def worker_device(requested, store):
    """pick_device, and on a machine with several GPUs the first one no other worker holds (`store.hold_gpu`):
    replicas of one Compose service see the same GPUs and must not all load onto the first."""
    import torch

    device = pick_device(requested)
    count = torch.cuda.device_count() if device == "cuda" else 0
    if count < 2:
        return device
    index = store.hold_gpu(count)
    if index is None:
        from django.conf import settings

        from .store import WorkerRefused

        raise WorkerRefused(f"all {count} GPUs of this machine are held by other workers of GPU pool "
                            f"{settings.TRIAGE_GPU_POOL!r}; start fewer workers than GPUs, or give each machine its "
                            "own TRIAGE_GPU_POOL (docs/cluster.md)")
    torch.cuda.set_device(index)  # streams, CUDA graphs and kernels use the current device
    return f"cuda:{index}"


def device_defaults(device):
    return CUDA_DEFAULTS if str(device).startswith("cuda") else CPU_DEFAULTS


def resolve_answer_tokens(device, max_answer_tokens=None):
    """The setting, else the device's default."""
    return max_answer_tokens or device_defaults(device).max_answer_tokens


AGING_CHOICES = ("off", "admissions", "deadline")


def engine_config(device, *, policy, eos_token_ids=(), max_answer_tokens=None, max_prompt_tokens=1024,
                  max_batch_size=None, urgent_batch_size=None, kv_cache_max_mb=CPU_KV_CACHE_MAX_MB,
                  prefix_caching=True, aging="deadline", first_token_targets=None, within_class=False):
    """The EngineConfig for `device` ("cpu" or "cuda..."): None settings take the device's defaults;
    urgent_batch_size 0 turns the urgent batch off. The KV cache is sized for the longest prompt plus the longest
    answer (max_model_len), and on the CPU capped at kv_cache_max_mb. `aging` is one of AGING_CHOICES; deadline
    aging measures waits against `first_token_targets` (None: TRIAGE_FIRST_TOKEN_TARGETS_S or its default)."""
    from scheduler import targets
    from .engine import EngineConfig

    defaults = device_defaults(device)
    if urgent_batch_size is None:
        urgent_batch_size = defaults.urgent_batch_size
    return EngineConfig(
        policy=policy,
        max_batch_size=max_batch_size or defaults.max_batch_size,
        token_budget=max(defaults.token_budget, max_batch_size or 0),
        urgent_batch_size=urgent_batch_size or None,
        max_model_len=max_prompt_tokens + resolve_answer_tokens(device, max_answer_tokens),
        kv_cache_max_mb=kv_cache_max_mb,
        eos_token_ids=list(eos_token_ids),
        enable_prefix_caching=prefix_caching,
        aging=aging != "off",
        aging_mode="deadline" if aging == "deadline" else "admissions",
        deadline_targets=tuple(first_token_targets or targets.first_token_targets()),
        within_class_preemption=bool(within_class),
        prefill_token_weight=defaults.prefill_token_weight,
        preemption_min_wait=defaults.preemption_min_wait,
    )


def build_service(*, model_name, device, policy, max_answer_tokens=None, model_cache=None, resend_interval=30.0,
                  max_prompt_tokens=1024, max_batch_size=None, urgent_batch_size=None,
                  kv_cache_max_mb=CPU_KV_CACHE_MAX_MB, answer_sampling=None, prefix_caching=True, card_check=True,
                  store=None, aging="deadline", first_token_targets=None, within_class=False, worker_name=None):
    """answer_sampling: SamplingParams fields for every answer (temperature, top_p, repetition_penalty,
    no_repeat_ngram_size, seed, stop); None is greedy. card_check: answers must follow their protocol cards. store: the database's RequestStore unless given (an
    evaluation passes an in-memory one)."""
    from .engine import Engine
    from .model_loading import load_model
    from .service import InferenceService
    from .store import RequestStore

    store = store or RequestStore(worker_name)
    device = worker_device(device, store)
    logger.info("loading model %s on %s", model_name, device)
    model, tokenizer = load_model(model_name, device=device, cache_dir=model_cache)
    eos = tokenizer.eos_token_id
    max_answer_tokens = resolve_answer_tokens(device, max_answer_tokens)
    config = engine_config(device, policy=policy, eos_token_ids=[eos] if eos is not None else [],
                           max_answer_tokens=max_answer_tokens, max_prompt_tokens=max_prompt_tokens,
                           max_batch_size=max_batch_size, urgent_batch_size=urgent_batch_size,
                           kv_cache_max_mb=kv_cache_max_mb, prefix_caching=prefix_caching, aging=aging,
                           first_token_targets=first_token_targets, within_class=within_class)
    logger.info("engine: batch %d (%s while urgency-0 work runs), prompts up to %d tokens, answers up to %d, "
                "aging %s%s", config.max_batch_size, config.urgent_batch_size or "no smaller batch", max_prompt_tokens,
                max_answer_tokens, aging, ", shortest remaining first inside a class" if within_class else "")
    engine = Engine(model, config, device=device)
    return InferenceService(engine, tokenizer, store, max_answer_tokens=max_answer_tokens,
                            resend_interval=resend_interval, answer_sampling=answer_sampling,
                            card_check=card_check, warm_cards=store.prompt_cards() if prefix_caching else ())
