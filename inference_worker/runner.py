"""Builds the service from settings and runs it, as its own process or as a thread of the web server."""
import argparse
import logging
import signal
import threading

logger = logging.getLogger("inference_worker")


def pick_device(requested):
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def build_service(*, model_name, device, policy, max_answer_tokens, model_cache=None, resend_interval=30.0):
    from .engine import Engine, EngineConfig
    from .models import load_model
    from .service import InferenceService
    from .store import RequestStore

    device = pick_device(device)
    logger.info("loading model %s on %s", model_name, device)
    model, tokenizer = load_model(model_name, device=device, cache_dir=model_cache)
    eos = tokenizer.eos_token_id
    engine = Engine(model, EngineConfig(policy=policy, eos_token_ids=[eos] if eos is not None else []), device=device)
    return InferenceService(engine, tokenizer, RequestStore(), max_answer_tokens=max_answer_tokens,
                            resend_interval=resend_interval)


def options_from_settings():
    from django.conf import settings

    return {
        "model_name": settings.TRIAGE_INFERENCE_MODEL,
        "device": settings.TRIAGE_INFERENCE_DEVICE,
        "policy": settings.TRIAGE_SCHEDULER_POLICY,
        "max_answer_tokens": settings.TRIAGE_MAX_ANSWER_TOKENS,
        "model_cache": settings.TRIAGE_MODEL_CACHE,
        "resend_interval": settings.TRIAGE_RESEND_INTERVAL_S,
    }


def start_in_thread(stop_event):
    """Embedded mode: the worker shares the web server's process (and its in-memory channel layer).

    The model is loaded before the thread starts: transformers' lazy imports are not safe to
    race against the web server's first request importing the classifier.
    """
    service = build_service(**options_from_settings())

    def target():
        try:
            service.run(stop_event)
        except Exception:
            logger.exception("embedded inference worker stopped")

    thread = threading.Thread(target=target, name="inference-worker", daemon=True)
    thread.start()
    return thread


def main(argv=None):
    from .store import setup_django

    setup_django()
    defaults = options_from_settings()
    parser = argparse.ArgumentParser(prog="python -m inference_worker", description=__doc__)
    parser.add_argument("--model", default=defaults["model_name"],
                        help="tiny, smollm2, qwen3-0.6b, qwen3-4b or a model directory (default: %(default)s)")
    parser.add_argument("--device", default=defaults["device"], help="auto, cpu or cuda (default: %(default)s)")
    parser.add_argument("--policy", default=defaults["policy"], choices=("fcfs", "sjf", "pjf", "semantic"))
    parser.add_argument("--max-answer-tokens", type=int, default=defaults["max_answer_tokens"])
    args = parser.parse_args(argv)
    if args.max_answer_tokens < 1:
        parser.error("--max-answer-tokens must be at least 1")

    stop_event = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop_event.set())
    service = build_service(model_name=args.model, device=args.device, policy=args.policy,
                            max_answer_tokens=args.max_answer_tokens, model_cache=defaults["model_cache"],
                            resend_interval=defaults["resend_interval"])
    service.run(stop_event)
    logger.info("inference worker stopped")
