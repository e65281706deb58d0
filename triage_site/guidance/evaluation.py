"""How well the cards fit the calls: card recall and precision per level, and the send-help-now check.

Requests go through the real pipeline (the classifier, then card selection), so the figures are what a
dispatcher would see, including the cards lost or gained by a wrong urgency."""
import json
import re
import textwrap
import time
from collections import Counter

from triage_site.classification import classifier, encoder
from triage_site.classification.head import read_jsonl

from .cards import LEVELS
from .selection import CARDS, select_for_classifications

BATCH = 16


class EvaluationDataError(ValueError):
    """A line of the evaluation file that cannot be scored; the message names the line."""


def read_rows(path):
    """Rows with `text`, `label` 0-4 and optionally `cards` (ids from the library)."""
    try:
        rows = read_jsonl(path)
    except (OSError, json.JSONDecodeError, ValueError) as exc:
        raise EvaluationDataError(f"cannot read {path}: {exc}") from exc
    if not rows:
        raise EvaluationDataError(f"{path}: no rows")
    for number, row in enumerate(rows, 1):
        if not isinstance(row.get("text"), str) or not row["text"].strip():
            raise EvaluationDataError(f"{path}: line {number}: 'text' must be a non-empty string")
        if not isinstance(row.get("label"), int) or row["label"] not in LEVELS:
            raise EvaluationDataError(f"{path}: line {number}: 'label' must be an integer 0..4")
        expected = row.get("cards")
        if expected is not None and (not isinstance(expected, list) or any(c not in CARDS for c in expected)):
            unknown = [c for c in expected if c not in CARDS] if isinstance(expected, list) else expected
            raise EvaluationDataError(f"{path}: line {number}: 'cards' must list card ids; unknown: {unknown}")
    return rows


def choose_cards(texts):
    """(urgency levels, chosen cards per text, mean seconds per request) through classifier and selection."""
    levels, chosen = [], []
    started = time.perf_counter()
    for start in range(0, len(texts), BATCH):
        batch = texts[start:start + BATCH]
        with encoder.reusing_embeddings():  # as the classification task does
            results = classifier.classify_batch(batch)
            chosen += [cards for cards, _ in select_for_classifications(batch, results)]
        levels += [result.urgency for result in results]
    return levels, chosen, (time.perf_counter() - started) / max(len(texts), 1)


def _ratio(hits, total):
    return round(hits / total, 4) if total else None


def _tally(pairs):
    """Micro recall and precision over (chosen ids, expected ids) pairs."""
    hits = sum(len(set(chosen) & set(expected)) for chosen, expected in pairs)
    return {"recall": _ratio(hits, sum(len(set(e)) for _, e in pairs)),
            "precision": _ratio(hits, sum(len(set(c)) for c, _ in pairs)), "requests": len(pairs)}


def figures(rows, levels, chosen, seconds_per_request):
    ids = [[card.id for card in cards] for cards in chosen]
    labelled = [(i, row["cards"]) for i, row in enumerate(rows) if row.get("cards") is not None]
    high = [i for i, row in enumerate(rows) if row["label"] <= 1]
    missing_send_now = [i for i in high if not any(card.send_help_now for card in chosen[i])]
    result = {
        "requests": len(rows),
        "labelled_with_cards": len(labelled),
        "levels_0_1": len(high),
        "levels_0_1_with_send_now_card": len(high) - len(missing_send_now),
        "levels_0_1_send_now_share": _ratio(len(high) - len(missing_send_now), len(high)),
        "cards_per_request": _ratio(sum(map(len, ids)), len(ids)),
        "selection_ms_per_request": round(seconds_per_request * 1000, 1),
        "urgency_exact": _ratio(sum(level == row["label"] for level, row in zip(levels, rows)), len(rows)),
        # each miss named, for the clinician reading the figures: the count alone does not say what was missed
        "levels_0_1_without_send_now_card": [{"line": i + 1, "label": rows[i]["label"], "urgency": levels[i],
                                              "text": rows[i]["text"]} for i in missing_send_now],
    }
    if labelled:
        result["overall"] = _tally([(ids[i], expected) for i, expected in labelled])
        result["levels_0_1_cards"] = _tally([(ids[i], expected) for i, expected in labelled if rows[i]["label"] <= 1])
        result["by_level"] = {str(level): _tally([(ids[i], e) for i, e in labelled if rows[i]["label"] == level])
                              for level in LEVELS}
        result["by_card"] = {card_id: _tally([([c for c in ids[i] if c == card_id], [c for c in e if c == card_id])
                                              for i, e in labelled if card_id in ids[i] or card_id in e])
                             for card_id in CARDS}
    return result


def per_request(rows, levels, chosen):
    """One entry per input line, in input order (the --json shape other checks parse)."""
    return [{"text": row["text"], "label": row["label"], "urgency": level,
             "cards": [{"id": card.id, "send_now": card.send_help_now} for card in cards],
             **({"expected": row["cards"]} if row.get("cards") is not None else {})}
            for row, level, cards in zip(rows, levels, chosen)]


def evaluate(rows, generate=0, generate_answers=None):
    """The figures and the per-request list; with `generate` > 0 also answers for the first `generate`
    requests, by `generate_answers(list of {text, urgency, cards})` (the worker's answer_check)."""
    levels, chosen, seconds = choose_cards([row["text"] for row in rows])
    report = {"figures": figures(rows, levels, chosen, seconds), "requests": per_request(rows, levels, chosen)}
    if generate:
        asked = [{"text": row["text"], "urgency": level,
                  "cards": [card.for_prompt() for card in cards]}
                 for row, level, cards in list(zip(rows, levels, chosen))[:generate]]
        answers = generate_answers(asked)
        report["figures"]["generation"] = generation_figures(answers, chosen[:generate])
        for entry, answer in zip(report["requests"], answers):
            entry.update(answer=answer.answer, withdrawn=answer.withdrawn)
    return report


def format_figures(figs):
    lines = [f"requests: {figs['requests']} ({figs['labelled_with_cards']} with expected cards); "
             f"urgency exact {figs['urgency_exact']:.1%}",
             f"level 0-1 requests with a send-help-now card: {figs['levels_0_1_with_send_now_card']} of "
             f"{figs['levels_0_1']}",
             *[f"  without one: line {miss['line']}, level {miss['label']} read as {miss['urgency']}: "
               f"{textwrap.shorten(miss['text'], 90)}" for miss in figs["levels_0_1_without_send_now_card"]],
             f"cards per request: {figs['cards_per_request']}; selection {figs['selection_ms_per_request']} ms/request"]
    if "overall" in figs:
        show = lambda t: (f"recall {t['recall']:.1%}" if t["recall"] is not None else "recall —") + ", " + (
            f"precision {t['precision']:.1%}" if t["precision"] is not None else "precision —") + f" ({t['requests']})"
        lines.append(f"cards overall: {show(figs['overall'])}")
        lines.append(f"cards, levels 0-1: {show(figs['levels_0_1_cards'])}")
        lines += [f"  level {level}: {show(tally)}" for level, tally in figs["by_level"].items() if tally["requests"]]
        lines.append("by card:")
        lines += [f"  {card_id:22s} {show(tally)}" for card_id, tally in figs["by_card"].items() if tally["requests"]]
    if "generation" in figs:
        lines.append("generation: " + ", ".join(f"{k} {v}" for k, v in figs["generation"].items()
                                                 if not isinstance(v, (dict, list))))
    return "\n".join(lines)


def repeats_itself(answer, size=4, times=3):
    """A loop by a measure of our own, independent of the guard: some run of `size` words comes `times` times."""
    words = re.findall(r"[a-z']+", answer.lower())
    counts = Counter(tuple(words[i:i + size]) for i in range(len(words) - size + 1))
    return any(count >= times for count in counts.values())


def carries_key_steps(answer, cards):
    """The answer names every key-word group of at least one of its cards (a word counts as a stem)."""
    words = re.findall(r"[a-z']+", answer.lower())
    return any(card.key_words and all(any(w.startswith(stem) for stem in group for w in words)
                                       for group in card.key_words) for card in cards)


def generation_figures(answers, chosen):
    """Counts over generated answers (`answer_check.Outcome`s) and the cards each request was shown."""
    shown = [(answer, cards) for answer, cards in zip(answers, chosen) if not answer.withdrawn and not answer.failed]
    reasons = Counter(answer.withdrawn for answer in answers if answer.withdrawn)
    return {
        "answers": len(answers),
        "withdrawn": sum(reasons.values()),
        "withdrawn_reasons": dict(reasons),
        "failed": sum(1 for answer in answers if answer.failed),
        "shown": len(shown),
        "shown_that_loop": sum(repeats_itself(answer.answer) for answer, _ in shown),
        "shown_empty": sum(not answer.answer.strip() for answer, _ in shown),
        "shown_with_key_steps": sum(carries_key_steps(answer.answer, cards) for answer, cards in shown),
        "mean_tokens": _ratio(sum(answer.generated_tokens for answer in answers), len(answers)),
    }
