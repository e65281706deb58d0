"""Exit 0 when an inference worker has reported within --max-age seconds (container health check)."""
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from triage_site.dispatch.models import WorkerHeartbeat


class Command(BaseCommand):
    help = "Fail unless an inference worker wrote a heartbeat recently."

    def add_arguments(self, parser):
        parser.add_argument("--max-age", type=float, default=30.0)
        parser.add_argument("--name", help="check this worker (its --name); default: the latest to report")
        parser.add_argument("--host", help="check the worker named host:pid on this host (a replica's own check, "
                                           "with --host \"$(hostname)\" in its container)")

    def handle(self, *args, max_age, name=None, host=None, **options):
        heartbeats = WorkerHeartbeat.objects.order_by("-updated_at")
        if name:
            heartbeats = heartbeats.filter(worker_name=name)
        elif host:
            heartbeats = heartbeats.filter(worker_name__startswith=f"{host}:")
        latest = heartbeats.first()
        if latest is None:
            which = f" named {name}" if name else f" on host {host}" if host else ""
            raise CommandError(f"no inference worker{which} has reported yet")
        age = (timezone.now() - latest.updated_at).total_seconds()
        if age > max_age:
            raise CommandError(f"last heartbeat from {latest.worker_name} is {age:.0f} s old")
        self.stdout.write(f"{latest.worker_name} reported {age:.1f} s ago")
