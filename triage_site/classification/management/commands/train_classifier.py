"""Train the urgency / answer-length head on the project's data set and save the artefact."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from triage_site.classification import head


class Command(BaseCommand):
    help = "Train the urgency head on the labelled data sets and save it under data/classifier/model/."

    def add_arguments(self, parser):
        parser.add_argument("--data", nargs="+", default=None,
                            help="training JSONL files (text, label, length_bucket); default: the generated set "
                                 "and every part in data/classifier/written/")
        parser.add_argument("--out", default=str(head.ARTIFACT_PATH), help="artefact path (.joblib)")
        parser.add_argument("--encoder", default=None, help="encoder name / HF id / path (default: setting)")
        parser.add_argument("--under-cost", type=float, default=head.DEFAULT_UNDER_COST,
                            help="cost per level of under-triaging a level 0-1 request, relative to over-triage")
        parser.add_argument("--minor-under-cost", type=float, default=head.DEFAULT_MINOR_UNDER_COST,
                            help="cost per level of under-triaging a level 2-4 request, relative to over-triage")
        parser.add_argument("--C", type=float, default=head.DEFAULT_C, help="inverse regularisation strength")
        parser.add_argument("--lengths-from-db", action="store_true",
                            help="refit only the answer-length model of the current head (--out) on the answers "
                                 "recorded in the database (finished requests)")
        parser.add_argument("--min-recorded", type=int, default=50,
                            help="with --lengths-from-db: refuse with fewer recorded answers than this")

    def handle(self, *args, **options):
        if options["lengths_from_db"]:
            return self._refit_lengths(options)
        try:
            trained = head.train(options["data"], encoder_name=options["encoder"],
                                 under_cost=options["under_cost"], c=options["C"],
                                 minor_under_cost=options["minor_under_cost"])
        except head.EvaluationLeak as exc:
            raise CommandError(str(exc)) from exc
        out = Path(options["out"])
        head.save(trained, out, out.with_suffix(".json"))
        self.stdout.write(f"trained head {trained.version} on {trained.meta['train_rows']} rows "
                          f"(encoder {trained.encoder_name}, data sha256 {trained.train_sha256[:16]})")
        self.stdout.write(f"saved {out} ({out.stat().st_size // 1024} KiB)")

    def _refit_lengths(self, options):
        from triage_site.intake.selectors import recorded_answer_lengths

        out = Path(options["out"])
        recorded = recorded_answer_lengths()
        if len(recorded) < options["min_recorded"]:
            raise CommandError(f"only {len(recorded)} recorded answers in the database (finished requests); "
                               f"at least {options['min_recorded']} are needed (--min-recorded)")
        try:
            current = head.load(out, encoder_name=options["encoder"])
            head.refit_lengths(current, recorded, encoder_name=options["encoder"])
        except (head.HeadUnavailable, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        head.save(current, out, out.with_suffix(".json"))
        self.stdout.write(f"refitted the length model of head {current.version} on {len(recorded)} recorded answers; "
                          f"saved {out}")
