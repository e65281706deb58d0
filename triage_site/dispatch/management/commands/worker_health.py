"""Exit 0 when an inference worker has reported within --max-age seconds (container health check)."""
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from triage_site.dispatch.models import WorkerHeartbeat


class Command(BaseCommand):
    help = "Fail unless an inference worker wrote a heartbeat recently."

    def add_arguments(self, parser):
        parser.add_argument("--max-age", type=float, default=30.0)

    def handle(self, *args, max_age, **options):
        latest = WorkerHeartbeat.objects.order_by("-updated_at").first()
        if latest is None:
            raise CommandError("no inference worker has reported yet")
        age = (timezone.now() - latest.updated_at).total_seconds()
        if age > max_age:
            raise CommandError(f"last heartbeat from {latest.worker_name} is {age:.0f} s old")
        self.stdout.write(f"{latest.worker_name} reported {age:.1f} s ago")
