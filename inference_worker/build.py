"""Builds the inference service (model, engine, scheduler, store) from settings or from arguments."""
import logging

logger = logging.getLogger("inference_worker")


def pick_device(requested):
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def build_service(*, model_name, device, policy, max_answer_tokens, model_cache=None, resend_interval=30.0):
    from .engine import Engine, EngineConfig
    from .model_loading import load_model
    from .service import InferenceService
    from .store import RequestStore

    device = pick_device(device)
    logger.info("loading model %s on %s", model_name, device)
    model, tokenizer = load_model(model_name, device=device, cache_dir=model_cache)
    eos = tokenizer.eos_token_id
    engine = Engine(model, EngineConfig(policy=policy, eos_token_ids=[eos] if eos is not None else []), device=device)
    return InferenceService(engine, tokenizer, RequestStore(), max_answer_tokens=max_answer_tokens,
                            resend_interval=resend_interval)
