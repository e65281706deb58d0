"""Card recall and precision out of fold on the card trigger's own training rows: how the learned head's
threshold and its veto of one-clause triggers (card_head.THRESHOLD, VETO_BELOW) were chosen.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/card_veto.py --folds 5

Rows with a scenario are split into folds by scenario (a situation written several times never falls on both
sides); rows without one always train. For each fold a head is fitted on the other rows (`card_head.fit`) and
the fold's cards are chosen with its probabilities, the phrase, word and finding triggers, and the row's own
urgency label as the level (the classifier's verdict on its own training rows would flatter it). Red-flag rule
cards are kept from the veto, as in `selection.overruled`. Prints a table and writes JSON. The development set
(`benchmarks/card_threshold.py`) is the second check: these rows share their writers across folds.
"""
import argparse
import json
import os
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triage_site.settings")

THRESHOLDS = (0.4, 0.5, 0.6, 0.7)
VETOES = (0.0, 0.1, 0.2, 0.3)
BATCH = 16


def fold_of(scenario, folds):
    return zlib.crc32(scenario.encode("utf-8")) % folds


def triggers(rows):
    """(per row: (clause embeddings, phrase triggers, word/finding/rule triggers, red-flag rule cards), the
    classifier's level per row, the encoder's name). Shared with benchmarks/card_threshold.py."""
    from triage_site.classification import classifier, encoder
    from triage_site.classification.head import readable_texts
    from triage_site.guidance import selection
    from triage_site.guidance.clauses import clause_vectors_batch

    encode, encoder_name = selection._encoder()
    found, levels = [], []
    for start in range(0, len(rows), BATCH):
        texts = readable_texts(rows[start:start + BATCH])
        with encoder.reusing_embeddings():
            results = classifier.classify_batch(texts)
            clauses = clause_vectors_batch(texts, encode)
            phrased = selection.phrase_triggers_batch(texts, clauses, encode, encoder_name)
        cited = [selection.sources_of(result.detail) for result in results]
        levels += [result.urgency for result in results]
        found += [(vectors, phrase, selection.exact_triggers(text, set(sources)), selection.rule_cards(sources))
                  for text, (_, vectors), phrase, sources in zip(texts, clauses, phrased, cited)]
    return found, levels, encoder_name


def out_of_fold(rows, found, encoder_name, folds):
    from triage_site.classification.head import readable_texts
    from triage_site.guidance import card_head

    probabilities = [None] * len(rows)
    for fold in range(folds):
        tested = [i for i, row in enumerate(rows) if row.get("scenario") and fold_of(row["scenario"], folds) == fold]
        trained = [i for i, row in enumerate(rows) if not row.get("scenario") or fold_of(row["scenario"], folds) != fold]
        head = card_head.fit([rows[i] for i in trained], [found[i][0] for i in trained], encoder_name)
        for i, probs in zip(tested, head.probabilities(readable_texts([rows[i] for i in tested]), [found[i][0] for i in tested])):
            probabilities[i] = probs
    return probabilities


def score(rows, found, probabilities, threshold, veto):
    from triage_site.classification.reading import readable
    from triage_site.guidance import evaluation, selection

    tested = [i for i, probs in enumerate(probabilities) if probs is not None]
    chosen = []
    for i in tested:
        _, phrase, exact, kept = found[i]
        strengths = selection.combined(phrase, exact, probabilities[i], kept, threshold, veto)
        chosen.append(selection.choose(readable(rows[i]["text"]), rows[i]["label"], strengths))
    figures = evaluation.figures([rows[i] for i in tested], [rows[i]["label"] for i in tested], chosen, 0.0)
    return {"head_threshold": threshold, "veto_below": veto, "rows": len(tested),
            "levels_0_1": figures["levels_0_1_cards"], "overall": figures["overall"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--json", default=str(ROOT / "var" / "bench-card-veto.json"))
    args = parser.parse_args(argv)
    if not 2 <= args.folds <= 20:
        parser.error("--folds must be 2..20")
    import django

    django.setup()
    from triage_site.guidance import card_head

    rows = card_head.read_rows(card_head.training_paths())
    found, _, encoder_name = triggers(rows)
    probabilities = out_of_fold(rows, found, encoder_name, args.folds)
    table = [score(rows, found, probabilities, threshold, veto) for threshold in THRESHOLDS for veto in VETOES]
    print(f"out of fold on {table[0]['rows']} of {len(rows)} training rows ({args.folds} folds by scenario)")
    print(f"{'head >=':>8} {'veto <':>7} {'rec 0-1':>8} {'prec 0-1':>8} {'rec all':>8} {'prec all':>8}")
    for line in table:
        print(f"{line['head_threshold']:>8} {line['veto_below']:>7} {line['levels_0_1']['recall']:>8.3f} "
              f"{line['levels_0_1']['precision']:>8.3f} {line['overall']['recall']:>8.3f} "
              f"{line['overall']['precision']:>8.3f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"folds": args.folds, "training_rows": len(rows), "variants": table},
                                          indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
