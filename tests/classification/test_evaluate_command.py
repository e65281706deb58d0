"""The evaluate_classifier command on small JSONL files written here."""
import io
import re

import pytest
from django.core.management import CommandError, call_command

from triage_site.classification import classifier


def run(path):
    out = io.StringIO()
    call_command("evaluate_classifier", data=str(path), stdout=out)
    return out.getvalue()


def figure(output, label):
    return float(re.search(rf"{re.escape(label)}\s+([\d.]+)%", output).group(1))


def test_figures_are_computed_from_predictions(monkeypatch, write_jsonl):
    # A fake classifier answering by text, so every figure is known in advance.
    answers = {"a": 0, "b": 2, "c": 2, "d": 4}
    monkeypatch.setattr(classifier, "classify", lambda text: classifier.Classification(
        urgency=answers[text], predicted_output_tokens=100, model_urgency=answers[text]))
    path = write_jsonl([{"text": "a", "label": 0}, {"text": "b", "label": 1},   # correct, under by 1
                        {"text": "c", "label": 3}, {"text": "d", "label": 1}])  # over by 1, under by 3
    output = run(path)
    assert figure(output, "accuracy:") == 25.0
    assert figure(output, "within-one accuracy:") == 75.0
    assert figure(output, "under-triage rate:") == 50.0
    assert figure(output, "of levels 0 and 1:") == pytest.approx(66.7)
    assert figure(output, "over-triage rate:") == 25.0
    assert re.search(r"true 1:\s+0\s+0\s+1\s+0\s+1", output)
    assert "latency per request: p50" in output


def test_real_model_on_a_small_file(loaded_model, write_jsonl):
    path = write_jsonl([
        {"text": "my wife collapsed and is not breathing", "label": 0},
        {"text": "he has crushing chest pain and is diabetic", "label": 1},
        {"text": "I need a repeat prescription for my inhaler", "label": 4},
    ])
    output = run(path)
    assert "requests: 3" in output
    assert figure(output, "of levels 0 and 1:") == 0.0
    assert figure(output, "within-one accuracy:") == 100.0
    p50 = float(re.search(r"p50 ([\d.]+) ms", output).group(1))
    assert 0 < p50 < 1000


def test_bad_label_is_refused(write_jsonl):
    with pytest.raises(CommandError):
        run(write_jsonl([{"text": "x", "label": 7}]))


def test_figures_per_style_and_level_and_every_missed_life_threat_are_listed(monkeypatch, write_jsonl):
    answers = {"collapsed, grey": 2, "crushing chest": 1, "sore throat": 4, "sprain": 2}
    monkeypatch.setattr(classifier, "classify", lambda text: classifier.Classification(
        urgency=answers[text], predicted_output_tokens=100, model_urgency=answers[text]))
    path = write_jsonl([{"text": "collapsed, grey", "label": 0, "style": "understated"},
                        {"text": "crushing chest", "label": 1, "style": "shorthand"},
                        {"text": "sore throat", "label": 4, "style": "shorthand"},
                        {"text": "sprain", "label": 3, "style": "understated"}])
    output = run(path)
    assert re.search(r"^understated\s+2\s+0\.0%\s+50\.0%\s+50\.0%\s+50\.0%$", output, re.M)
    assert re.search(r"^shorthand\s+2\s+100\.0%\s+100\.0%\s+0\.0%\s+0\.0%$", output, re.M)
    assert re.search(r"^0\s+1\s+0\.0%\s+0\.0%\s+100\.0%\s+0\.0%$", output, re.M)  # level 0, under by two
    assert "level 0-1 requests triaged less urgent: 1" in output
    assert "true 0 -> 2 [understated]: collapsed, grey" in output


def test_leave_scenario_out_scores_every_row_with_a_head_that_never_saw_its_scenario(monkeypatch, write_jsonl):
    from triage_site.classification import evaluation, head

    rows = [{"text": f"{word} {n}", "label": level, "scenario": f"s{level}-{word}", "style": "sms"}
            for level, word in enumerate(["arrest", "stroke", "fracture", "sprain", "refill"]) for n in range(3)]
    rows += [{"text": f"{word} again {n}", "label": level, "scenario": f"t{level}-{word}", "style": "sms"}
             for level, word in enumerate(["arrest", "stroke", "fracture", "sprain", "refill"]) for n in range(3)]
    seen = []

    def fit(train_rows, *args):
        seen.append({row["scenario"] for row in train_rows})
        return real_fit(train_rows, *args)

    real_fit = head.fit
    monkeypatch.setattr(head, "prepared", lambda rows, name: (
        __import__("numpy").zeros((len(rows), 4)), [[] for _ in rows], __import__("numpy").zeros((len(rows), 2))))
    monkeypatch.setattr(head, "fit", fit)
    report = evaluation.cross_validate(rows, encoder_name="minilm", folds=5)
    assert report["n"] == len(rows) and set(report["by_style"]) == {"sms"}
    assert len(seen) == 5
    scored_by = {}
    for train_scenarios in seen:
        for scenario in {row["scenario"] for row in rows} - train_scenarios:
            scored_by.setdefault(scenario, 0)
            scored_by[scenario] += 1
    assert all(count == 1 for count in scored_by.values()) and len(scored_by) == 10


def test_cross_validate_flag_refuses_too_many_folds(write_jsonl):
    path = write_jsonl([{"text": "a", "label": 0, "scenario": "x"}, {"text": "b", "label": 4, "scenario": "y"}])
    with pytest.raises(CommandError, match="folds"):
        call_command("evaluate_classifier", data=str(path), cross_validate=True, folds=3, stdout=io.StringIO())
