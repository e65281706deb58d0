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
        parser.add_argument("--cross-validate", action="store_true",
                            help="leave-scenario-out cross-validation on the training data (or --data files): "
                                 "every scenario is scored by a head that never saw any phrasing of it")
        parser.add_argument("--folds", type=int, default=10, help="scenario folds for --cross-validate")
        parser.add_argument("--lengths-from-db", action="store_true",
                            help="Kendall's tau between the predicted and the generated answer length of the finished "
                                 "requests in the database")

    def handle(self, *args, **options):
        if options["lengths_from_db"]:
            return self._recorded_lengths(options)
        if options["cross_validate"]:
            return self._cross_validate(options)
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
        self._print(report, options)

    def _recorded_lengths(self, options):
        from triage_site.classification import length
        from triage_site.intake.selectors import recorded_answer_lengths

        recorded = recorded_answer_lengths()
        if len(recorded) < 2:
            raise CommandError(f"the database holds {len(recorded)} finished request(s) with an answer; "
                               "Kendall's tau needs at least 2")
        report = length.recorded_report(recorded)
        self.stdout.write(json.dumps(report, indent=2) if options["json"] else length.format_recorded(report))

    def _cross_validate(self, options):
        paths = [options["data"]] if options["data"] else [str(path) for path in head.training_paths()]
        try:
            rows = head.read_training(paths)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read the training data: {exc}") from exc
        if options["folds"] < 2 or len({row.get("scenario") for row in rows}) < options["folds"]:
            raise CommandError("--folds must be at least 2 and at most the number of scenarios")
        report = evaluation.cross_validate(rows, folds=options["folds"])
        report["data"] = f"leave-scenario-out ({options['folds']} folds) over " + ", ".join(paths)
        self._print(report, options)

    def _print(self, report, options):
        path = report["data"]
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.stdout.write(f"data: {path}")
            self.stdout.write(evaluation.format_report(report))
