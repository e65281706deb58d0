"""Card recall and precision for thresholds of the learned card trigger, with and without the phrase triggers,
and for the head's veto of one-clause triggers, on a tuning set (never the independent one): how
card_head.THRESHOLD and VETO_BELOW were checked.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/card_threshold.py --data data/guidance/dev/requests.jsonl

Each request is classified once; then its cards are chosen again for every variant. Prints a table and writes
JSON."""
import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triage_site.settings")

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
VETOES = (0.0, 0.1, 0.2, 0.3)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--json", default=str(ROOT / "var" / "bench-card-threshold.json"))
    args = parser.parse_args(argv)
    if "independent" in Path(args.data).parts:
        parser.error("the independent set is scored once, never tuned on")

    import django

    django.setup()
    from benchmarks.card_veto import triggers
    from triage_site.classification.head import readable_texts
    from triage_site.guidance import evaluation, selection

    rows = evaluation.read_rows(args.data)
    texts = readable_texts(rows)
    found, levels, encoder_name = triggers(rows)
    probabilities = selection.head_probabilities_batch(texts, [vectors for vectors, *_ in found], encoder_name)

    table = []
    for with_phrases in (True, False):
        for threshold in (None, *THRESHOLDS):
            for veto in VETOES if threshold is not None else (0.0,):
                chosen = []
                for text, level, (_, phrase, exact, kept), probs in zip(texts, levels, found, probabilities):
                    strengths = selection.combined(phrase if with_phrases else {}, exact,
                                                   probs if threshold is not None else None, kept, threshold, veto)
                    chosen.append(selection.choose(text, level, strengths))
                figures = evaluation.figures(rows, levels, chosen, 0.0)
                table.append({"phrases": with_phrases, "head_threshold": threshold, "veto_below": veto,
                              "levels_0_1": figures["levels_0_1_cards"], "overall": figures["overall"],
                              "send_now": figures["levels_0_1_with_send_now_card"]})
    print(f"{'phrases':>8} {'head >=':>8} {'veto <':>7} {'rec 0-1':>8} {'prec 0-1':>8} {'rec all':>8} {'prec all':>8} "
          f"{'send-now':>8}")
    for line in table:
        print(f"{str(line['phrases']):>8} {str(line['head_threshold']):>8} {line['veto_below']:>7} "
              f"{line['levels_0_1']['recall']:>8.3f} {line['levels_0_1']['precision']:>8.3f} "
              f"{line['overall']['recall']:>8.3f} {line['overall']['precision']:>8.3f} {line['send_now']:>8}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"data": args.data, "rows": len(rows), "variants": table}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
