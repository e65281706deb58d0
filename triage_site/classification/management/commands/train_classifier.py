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
                            help="cost of under-triage per level relative to over-triage")
        parser.add_argument("--C", type=float, default=head.DEFAULT_C, help="inverse regularisation strength")

    def handle(self, *args, **options):
        try:
            trained = head.train(options["data"], encoder_name=options["encoder"],
                                 under_cost=options["under_cost"], c=options["C"])
        except head.EvaluationLeak as exc:
            raise CommandError(str(exc)) from exc
        out = Path(options["out"])
        head.save(trained, out, out.with_suffix(".json"))
        self.stdout.write(f"trained head {trained.version} on {trained.meta['train_rows']} rows "
                          f"(encoder {trained.encoder_name}, data sha256 {trained.train_sha256[:16]})")
        self.stdout.write(f"saved {out} ({out.stat().st_size // 1024} KiB)")
