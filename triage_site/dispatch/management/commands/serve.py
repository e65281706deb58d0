"""Embedded mode in one process: the daphne web server plus the inference worker as a thread."""
import threading

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the web app with daphne and run the inference worker in the same process."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-worker", action="store_true", help="Run the web server only.")

    def handle(self, *args, host, port, no_worker, **options):
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server, twisted_loop

        from triage_site.asgi import application
        from triage_site.dispatch import events

        stop_event = threading.Event()
        if not no_worker:
            from inference_worker.runner import start_in_thread

            events.bind_server_loop(twisted_loop)
            start_in_thread(stop_event)
        self.stdout.write(f"Triage on http://{host}:{port}/  (dispatcher board: /dispatch/)")
        try:
            Server(
                application=application,
                endpoints=build_endpoint_description_strings(host=host, port=port),
                signal_handlers=True,
            ).run()
        finally:
            stop_event.set()
