"""Embedded mode: the daphne web server and the inference worker in one process (`manage.py serve`).

The worker runs as a thread and shares the web server's in-memory channel layer, so its events are
published on the server's own event loop. The web project reaches the worker only through `serve`."""
import logging
import threading

from .build import build_service
from .store import WorkerRefused, publish_on_loop, worker_settings

logger = logging.getLogger("inference_worker")


def serve(application, *, host, port, with_worker=True, banner=""):
    """Serve `application` (the project's ASGI app) until stopped; with the worker unless told otherwise.
    `banner` is printed once the server listens, after the models' and the server's own start-up output,
    so the address is the last thing a newcomer reads."""
    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server, twisted_loop
    from twisted.internet import reactor

    if banner:
        reactor.callWhenRunning(reactor.callLater, 0.5, lambda: print(banner, flush=True))

    stop_event = threading.Event()
    if with_worker:
        publish_on_loop(twisted_loop)
        start_in_thread(stop_event)
    try:
        Server(application=application, endpoints=build_endpoint_description_strings(host=host, port=port),
               signal_handlers=True).run()
    finally:
        stop_event.set()


def start_in_thread(stop_event):
    """The model is loaded before the thread starts: transformers' lazy imports are not safe to
    race against the web server's first request importing the classifier."""
    service = build_service(**worker_settings())

    def target():
        try:
            service.run(stop_event)
        except WorkerRefused as refusal:
            logger.error("the embedded inference worker did not start: %s", refusal)
        except Exception:
            logger.exception("embedded inference worker stopped")

    thread = threading.Thread(target=target, name="inference-worker", daemon=True)
    thread.start()
    return thread
