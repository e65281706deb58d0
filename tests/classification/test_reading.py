"""What the classifier reads is what the dispatcher sees: invisible characters and look-alike letters do not hide
a red flag."""
import pytest

from triage_site.classification import rules
from triage_site.classification.reading import readable


@pytest.mark.parametrize("typed", [
    "he is not bre\u200bathing",  # a zero-width space
    "he is not bre\u00adathing",  # a soft hyphen
    "he is n\u043et bre\u0430thing",  # Cyrillic o and a
    "he is \uff4e\uff4f\uff54 breathing",  # full-width letters
    "he is not breathing\U000e0069\U000e0067\U000e006e",  # invisible tag characters
])
def test_invisible_and_look_alike_characters_do_not_hide_a_red_flag(typed):
    assert readable(typed) == "he is not breathing"
    assert rules.red_flags(readable(typed)).level == 0


def test_other_scripts_numbers_and_accents_are_left_as_they_are():
    assert readable("\u043f\u043e\u043c\u043e\u0433\u0438\u0442\u0435, caf\u00e9, 2\u00bd hours") == \
        "\u043f\u043e\u043c\u043e\u0433\u0438\u0442\u0435, caf\u00e9, 2\u00bd hours"


@pytest.mark.django_db
def test_intake_reads_the_text_as_seen_and_stores_it_as_typed():
    from triage_site.intake import services

    typed = "my husband is n\u043et bre\u0430thing"
    request = services.store_request(text=typed)
    assert request.rule_urgency == 0 and request.text == typed
