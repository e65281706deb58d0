"""The card library: every card valid, and a bad card stops the start naming the card and the fault."""
import pytest

from triage_site.classification import findings, rules
from triage_site.guidance import cards, selection

GOOD = '''
[[card]]
id = "{id}"
title = "A title"
version = 1
levels = [{levels}]
send_help_now = true
ages = ["adult", "child", "infant"]
steps = ["Do this.", "Then that."]
call_back_if = ["It gets worse."]
guidelines = ["ERC Guidelines 2021: First Aid"]
key_words = [["this"]]
[card.triggers]
findings = []
rules = []
phrases = []
words = []
'''
REQUIRED_IDS = ("cpr_adult", "cpr_child", "cpr_infant", "choking", "severe_bleeding", "unconscious_breathing",
                "stroke", "chest_pain", "breathing_difficulty", "anaphylaxis", "seizure", "overdose_poisoning",
                "childbirth", "burns", "heat_illness", "hypothermia", "drowning", "electrocution", "major_trauma",
                "diabetic_emergency", "suicidal_caller", "scene_safety", "general_emergency", "urgent_care",
                "self_care")


def library(tmp_path, *extra, fallbacks=True):
    text = "".join(extra)
    if fallbacks:
        text += "".join(GOOD.format(id=card_id, levels=levels) for card_id, levels in
                        (("general_emergency", "0, 1"), ("urgent_care", "2"), ("self_care", "3, 4")))
    path = tmp_path / "cards.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_library_has_every_required_card_and_valid_triggers():
    loaded = cards.load_cards()
    assert set(REQUIRED_IDS) <= set(loaded)
    cards.check_references(loaded, {f.id for f in findings.FINDINGS}, {r.name for r in rules.RULES})
    for card in loaded.values():
        assert card.steps and card.guidelines and card.version >= 1
        assert card.id in ("general_emergency", "urgent_care", "self_care") or card.triggers.phrases, card.id
    assert all(loaded[card_id].send_help_now for card_id in ("cpr_adult", "choking", "general_emergency"))
    assert not loaded["self_care"].send_help_now


def test_a_valid_file_loads(tmp_path):
    loaded = cards.load_cards(library(tmp_path, GOOD.format(id="burns", levels="0, 1, 2")))
    assert loaded["burns"].levels == (0, 1, 2)
    assert loaded["burns"].reference() == {"id": "burns", "version": 1, "title": "A title", "send_now": True}


@pytest.mark.parametrize(("change", "message"), [
    (("version = 1", "version = 0"), "card 'burns': version must be a whole number from 1"),
    (("levels = [0, 1, 2]", "levels = [7]"), "card 'burns': levels must list urgency levels 0 to 4"),
    (('steps = ["Do this.", "Then that."]', "steps = []"), "card 'burns': steps must not be empty"),
    (("send_help_now = true", 'send_help_now = "yes"'), "card 'burns': send_help_now must be true or false"),
    (('ages = ["adult", "child", "infant"]', 'ages = ["teen"]'), "card 'burns': ages must be among"),
    (('title = "A title"', 'title = ""'), "card 'burns': title must be a non-empty string"),
    (('guidelines = ["ERC Guidelines 2021: First Aid"]', "guidelines = []"), "card 'burns': guidelines must not"),
    (('key_words = [["this"]]', 'key_words = ["this"]'), "card 'burns': key_words must be a list"),
    (('id = "burns"', 'id = "bad id"'), "card number 1 needs an id"),
])
def test_a_bad_card_names_itself_and_the_fault(tmp_path, change, message):
    text = GOOD.format(id="burns", levels="0, 1, 2").replace(*change)
    with pytest.raises(cards.CardsFileError, match=message.replace("(", r"\(")):
        cards.load_cards(library(tmp_path, text))


def test_duplicates_missing_fallbacks_and_unknown_triggers_fail(tmp_path):
    with pytest.raises(cards.CardsFileError, match="card 'burns' appears twice"):
        cards.load_cards(library(tmp_path, GOOD.format(id="burns", levels="0"), GOOD.format(id="burns", levels="0")))
    with pytest.raises(cards.CardsFileError, match="fallback cards general_emergency, self_care, urgent_care"):
        cards.load_cards(library(tmp_path, GOOD.format(id="burns", levels="0"), fallbacks=False))
    loaded = cards.load_cards(library(tmp_path, GOOD.format(id="burns", levels="0").replace(
        "findings = []", 'findings = ["no_such_finding"]')))
    with pytest.raises(cards.CardsFileError, match="card 'burns': unknown triggers no_such_finding"):
        cards.check_references(loaded, {"not_breathing"}, set())
    loaded = cards.load_cards(library(tmp_path, GOOD.format(id="burns", levels="0").replace(
        "findings = []", 'findings = []\noverrulable_rules = ["no_such_rule"]')))
    with pytest.raises(cards.CardsFileError, match="card 'burns': unknown triggers no_such_rule"):
        cards.check_references(loaded, set(), {"stroke"})
    with pytest.raises(cards.CardsFileError, match="card 'burns': triggers has unknown keys rule "):
        cards.load_cards(library(tmp_path, GOOD.format(id="burns", levels="0").replace(
            "findings = []", 'findings = []\nrule = ["stroke"]')))


def test_an_unreadable_file_fails_with_its_path(tmp_path):
    path = tmp_path / "cards.toml"
    path.write_text("[[card]\n", encoding="utf-8")
    with pytest.raises(cards.CardsFileError, match="cannot read the protocol cards"):
        cards.load_cards(path)


def test_the_app_loads_the_library_at_start():
    assert selection.CARDS and "general_emergency" in selection.CARDS


def test_the_worker_warms_the_send_help_now_cards_of_the_most_urgent_levels_first():
    ordered = selection.cards_most_urgent_first()
    assert sorted(card.id for card in ordered) == sorted(selection.CARDS)
    keys = [(min(card.levels), not card.send_help_now) for card in ordered]
    assert keys == sorted(keys) and keys[0] == (0, False)
    assert ordered[-1].id == "self_care" or min(ordered[-1].levels) >= 3
