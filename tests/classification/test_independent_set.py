"""The independent evaluation set is frozen: it exists, keeps its shape, and never reaches training."""
import json

import pytest
from django.core.management import CommandError, call_command

from scheduler.urgency import LEVELS
from triage_site.classification import head


@pytest.fixture(scope="module")
def independent():
    return head.read_jsonl(head.INDEPENDENT_PATH)


@pytest.mark.parametrize("path", head.INDEPENDENT_PATHS, ids=lambda path: path.name)
def test_each_set_has_at_least_300_requests_and_60_per_level(path):
    rows = head.read_jsonl(path)
    assert len(rows) >= 300
    for level in LEVELS:
        assert sum(row["label"] == level for row in rows) >= 60


@pytest.mark.parametrize("path", head.INDEPENDENT_PATHS, ids=lambda path: path.name)
def test_no_text_of_either_set_is_in_the_training_or_held_out_data(path):
    rows = head.read_jsonl(path)
    with pytest.raises(head.EvaluationLeak):
        head.refuse_evaluation_texts([rows[0]["text"]])  # the check itself can fire for this set
    assert len(head.training_paths()) > 1  # the written parts are training data too, and are checked
    for training in (*head.training_paths(), head.HELDOUT_PATH):
        head.refuse_evaluation_texts([row["text"] for row in head.read_jsonl(training)])


def test_the_card_trigger_never_trains_on_either_set():
    from triage_site.guidance import card_head

    assert set(head.INDEPENDENT_PATHS) <= set(card_head.HELD_OUT_PATHS)
    for path in card_head.training_paths():
        card_head.refuse_held_out([row["text"] for row in head.read_jsonl(path)])


def test_training_refuses_data_that_holds_a_text_of_the_set(independent, tmp_path):
    leaked = f"  {independent[5]['text'].upper()}  "  # case and spacing do not hide it
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"text": "sore throat for two days", "label": 4}) + "\n"
                    + json.dumps({"text": leaked, "label": independent[5]["label"]}) + "\n", encoding="utf-8")
    with pytest.raises(CommandError, match="independent evaluation set"):
        call_command("train_classifier", data=[str(data)], out=str(tmp_path / "head.joblib"))
    assert not (tmp_path / "head.joblib").exists()
