"""`manage.py evaluate_guidance`: figures, the --json shape other checks parse, bad input, --generate."""
import io
import json

import pytest
from django.core.management import CommandError, call_command

from triage_site.guidance import evaluation, selection

ROWS = [
    {"text": "my husband collapsed and is not breathing", "label": 0, "cards": ["cpr_adult"]},
    {"text": "can I get a repeat prescription for my inhaler", "label": 4},
    {"text": "she is choking on food and can't breathe", "label": 0},
]


def write(tmp_path, rows):
    path = tmp_path / "set.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def run(*args, **options):
    out = io.StringIO()
    call_command("evaluate_guidance", *args, stdout=out, **options)
    return out.getvalue()


def test_json_has_the_figures_and_one_entry_per_line_in_input_order(tmp_path, loaded_model):
    report = json.loads(run(data=str(write(tmp_path, ROWS)), json=True))
    assert set(report) == {"figures", "requests"}
    assert [entry["text"] for entry in report["requests"]] == [row["text"] for row in ROWS]
    assert [entry["label"] for entry in report["requests"]] == [0, 4, 0]
    for entry in report["requests"]:
        assert entry["cards"] and all(set(card) == {"id", "send_now"} for card in entry["cards"])
    assert report["requests"][0]["cards"][0] == {"id": "cpr_adult", "send_now": True}
    figures = report["figures"]
    assert figures["levels_0_1"] == 2 and figures["levels_0_1_with_send_now_card"] == 2
    assert figures["labelled_with_cards"] == 1 and figures["overall"]["recall"] == 1.0


def test_plain_output_names_recall_precision_and_the_send_now_check(tmp_path, loaded_model):
    text = run(data=str(write(tmp_path, ROWS)))
    assert "level 0-1 requests with a send-help-now card: 2 of 2" in text
    assert "cards overall: recall 100.0%" in text


def test_each_level_0_1_request_without_a_send_help_now_card_is_named(tmp_path, loaded_model):
    rows = [ROWS[0], {"text": "can I get a repeat prescription for my inhaler", "label": 1}]
    path = str(write(tmp_path, rows))
    figures = json.loads(run(data=path, json=True))["figures"]
    assert figures["levels_0_1_with_send_now_card"] == 1
    assert figures["levels_0_1_without_send_now_card"] == [
        {"line": 2, "label": 1, "urgency": 4, "text": "can I get a repeat prescription for my inhaler"}]
    assert ("  without one: line 2, level 1 read as 4: can I get a repeat prescription for my inhaler"
            in run(data=path).splitlines())


@pytest.mark.parametrize(("row", "message"), [
    ({"text": "x", "label": 7}, "line 1: 'label' must be an integer 0..4"),
    ({"text": "", "label": 1}, "line 1: 'text' must be a non-empty string"),
    ({"text": "x", "label": 1, "cards": ["no_such_card"]}, "unknown: \\['no_such_card'\\]"),
])
def test_bad_lines_are_refused_with_the_line_number(tmp_path, row, message):
    with pytest.raises(CommandError, match=message):
        run(data=str(write(tmp_path, [row])))


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        run(data=str(tmp_path / "missing.jsonl"))


def test_generation_figures_count_withdrawn_looping_and_key_step_answers():
    class Answer:
        def __init__(self, answer, withdrawn="", failed="", generated_tokens=10):
            self.answer, self.withdrawn, self.failed, self.generated_tokens = answer, withdrawn, failed, generated_tokens

    cpr = [selection.CARDS["cpr_adult"]]
    key_steps = " ".join(group[0] for group in cpr[0].key_words)
    answers = [Answer(f"Tell them: {key_steps}."), Answer("go go go go go go go go go go go go"),
               Answer("x", withdrawn="withdrawn: repeated text")]
    figures = evaluation.generation_figures(answers, [cpr, cpr, cpr])
    assert figures["withdrawn"] == 1 and figures["withdrawn_reasons"] == {"withdrawn: repeated text": 1}
    assert figures["shown"] == 2 and figures["shown_that_loop"] == 1 and figures["shown_with_key_steps"] == 1


def test_generate_runs_the_worker_model_through_the_service(tmp_path, loaded_model, settings):
    settings.TRIAGE_INFERENCE_MODEL = "tiny"
    settings.TRIAGE_MAX_ANSWER_TOKENS = 24
    report = json.loads(run(data=str(write(tmp_path, ROWS)), json=True, generate=2))
    generation = report["figures"]["generation"]
    assert generation["answers"] == 2 and generation["withdrawn"] + generation["shown"] + generation["failed"] == 2
    assert "answer" in report["requests"][0] and "answer" not in report["requests"][2]
