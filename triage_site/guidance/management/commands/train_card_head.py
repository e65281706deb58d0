"""Train the learned card trigger on data/guidance/train/ and save its artefact."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from triage_site.classification import encoder
from triage_site.guidance import card_head


class Command(BaseCommand):
    help = "Train the learned card trigger on the labelled requests in data/guidance/train/ and save it."

    def add_arguments(self, parser):
        parser.add_argument("--data", nargs="+", default=None,
                            help="training JSONL files (text, cards); default: every file in data/guidance/train/")
        parser.add_argument("--out", default=str(card_head.ARTIFACT_PATH), help="artefact path (.joblib)")
        parser.add_argument("--C", type=float, default=card_head.DEFAULT_C, help="inverse regularisation strength")

    def handle(self, *args, data, out, C, **options):
        paths = [Path(path) for path in data] if data else card_head.training_paths()
        if not paths:
            raise CommandError(f"no training files in {card_head.TRAIN_DIR}")
        name = encoder.configured_name()
        try:
            head = card_head.train(paths, encoder.encode_with(name), name, c=C)
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        card_head.save(head, out)
        self.stdout.write(f"trained the card head on {head.meta['train_rows']} rows, {len(head.card_ids)} cards "
                          f"(encoder {name}, data sha256 {head.train_sha256[:16]}); saved {out}")
