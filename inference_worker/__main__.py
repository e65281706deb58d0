"""`python -m inference_worker`: the inference worker as its own process (the full stack)."""
import argparse
import logging
import signal
import sys
import threading

from scheduler import POLICIES

from .build import build_service
from .store import WorkerRefused, setup_django, worker_settings

logger = logging.getLogger("inference_worker")


def main(argv=None):
    setup_django()
    defaults = worker_settings()
    parser = argparse.ArgumentParser(prog="python -m inference_worker", description=__doc__)
    parser.add_argument("--model", default=defaults["model_name"],
                        help="tiny, smollm2, qwen3-0.6b, qwen3-4b or a model directory (default: %(default)s)")
    parser.add_argument("--device", default=defaults["device"], help="auto, cpu or cuda (default: %(default)s)")
    parser.add_argument("--policy", default=defaults["policy"], choices=POLICIES)
    parser.add_argument("--max-answer-tokens", type=int, default=defaults["max_answer_tokens"],
                        help="default: TRIAGE_MAX_ANSWER_TOKENS, else by device (CPU 200, CUDA 400)")
    parser.add_argument("--name", default=None,
                        help="this worker's name on the board and in its claims (default: TRIAGE_WORKER_NAME, else "
                             "host:pid); a worker restarted under the same name takes its unfinished requests back "
                             "at once instead of after their leases (docs/cluster.md)")
    args = parser.parse_args(argv)
    if args.name is not None and not args.name.strip():
        parser.error("--name must not be empty")
    if args.max_answer_tokens is not None and args.max_answer_tokens < 1:
        parser.error("--max-answer-tokens must be at least 1")

    stop_event = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop_event.set())
    settings = dict(defaults, model_name=args.model, device=args.device, policy=args.policy,
                    max_answer_tokens=args.max_answer_tokens)
    try:
        service = build_service(**settings, worker_name=args.name)
        service.run(stop_event)
    except WorkerRefused as refusal:
        logger.error("inference worker refused to start: %s", refusal)
        sys.exit(2)
    logger.info("inference worker stopped")


if __name__ == "__main__":
    main()
