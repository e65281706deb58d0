"""Score protocol-card selection (and optionally generated answers) on a labelled JSONL file."""
import json

from django.core.management.base import BaseCommand, CommandError

from triage_site.guidance import evaluation


class Command(BaseCommand):
    help = ("Card recall and precision per level on --data (JSONL: text, label 0..4, optional cards: expected "
            "card ids); every level 0-1 request must get a send-help-now card. --generate N also writes N "
            "answers with the packaged model and counts withdrawn, looping and key-step answers.")

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, help="JSONL file: text, label, optional cards")
        parser.add_argument("--generate", type=int, default=0, metavar="N",
                            help="also generate N answers with the packaged model (first N requests)")
        parser.add_argument("--json", action="store_true",
                            help='print one JSON object {"figures": {...}, "requests": [...]} in input order')

    def handle(self, *args, **options):
        if options["generate"] < 0:
            raise CommandError("--generate must be 0 or more")
        try:
            rows = evaluation.read_rows(options["data"])
        except evaluation.EvaluationDataError as exc:
            raise CommandError(str(exc)) from exc
        generate_answers = None
        if options["generate"]:
            from inference_worker.answer_check import generate_answers
        report = evaluation.evaluate(rows, options["generate"], generate_answers)
        if options["json"]:
            self.stdout.write(json.dumps(report))
        else:
            self.stdout.write(f"data: {options['data']}")
            self.stdout.write(evaluation.format_figures(report["figures"]))
