"""Embedded mode in one process: the daphne web server plus the inference worker as a thread."""
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from triage_site.database_ready import DatabaseNotReady, check_database_ready


class Command(BaseCommand):
    help = "Serve the web app with daphne and run the inference worker in the same process."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-worker", action="store_true", help="Run the web server only.")

    def handle(self, *args, host, port, no_worker, **options):
        from inference_worker.embedded import serve
        from triage_site.asgi import application

        from triage_site.intake.tasks import load_models

        try:
            check_database_ready()
        except DatabaseNotReady as exc:
            raise CommandError(str(exc)) from None
        if settings.CELERY_TASK_ALWAYS_EAGER:  # classification runs in this process: load its models now
            self.stdout.write("Loading the classifier's models...")
            load_models()
        address = f"http://{host}:{port}/"
        banner = f"\n{'=' * 72}\n  Triage is ready: open {address}\n  Dispatcher board: {address}dispatch/\n{'=' * 72}\n"
        serve(application, host=host, port=port, with_worker=not no_worker, banner=banner)
