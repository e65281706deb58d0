"""Evaluate the urgency classifier on a labelled JSONL file (default: the held-out split)."""
import json

from django.core.management.base import BaseCommand, CommandError

from triage_site.classification import evaluation, head


class Command(BaseCommand):
    help = ("Print accuracy, within-one accuracy, under/over-triage rates, a confusion matrix and latency "
            "per request on --data (JSONL: text, label 0..4); default the held-out split.")

    def add_arguments(self, parser):
        parser.add_argument("--data", default=None, help="JSONL file; default: the held-out split")
        parser.add_argument("--json", action="store_true", help="print the figures as JSON instead")

    def handle(self, *args, **options):
        path = options["data"] or str(head.HELDOUT_PATH)
        try:
            rows = head.read_jsonl(path)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        for number, row in enumerate(rows, 1):
            if not isinstance(row.get("label"), int) or not 0 <= row["label"] <= 4:
                raise CommandError(f"{path}: row {number}: 'label' must be an integer 0..4")
        if not rows:
            raise CommandError(f"{path}: no rows")
        report = evaluation.evaluate(rows)
        report["data"] = path
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.stdout.write(f"data: {path}")
            self.stdout.write(evaluation.format_report(report))
