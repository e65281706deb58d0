"""The context of a finding, by medspacy's ConText with our rules: what does not count for the patient now."""
import pytest

from triage_site.classification import context


def judged(text, phrase, negative_named=False):
    start = text.index(phrase)
    return context.judge(text, [(start, start + len(phrase))], [negative_named])[0]


@pytest.mark.parametrize("text, phrase, category", [
    ("no chest pain, just a cough", "chest pain", "NEGATED_EXISTENCE"),
    ("denies chest pain or shortness of breath", "shortness of breath", "NEGATED_EXISTENCE"),
    ("she had a fit earlier, it has stopped now", "she had a fit earlier", "RESOLVED"),
    ("he fainted and came round straight away", "he fainted", "RESOLVED"),
    ("history of stroke two years ago", "stroke", "HISTORICAL"),
    ("what would I do if he stopped breathing?", "he stopped breathing", "HYPOTHETICAL"),
    ("family history of heart attack", "heart attack", "OTHER_PERSON"),
    ("it was her brother who got stung, she is fine", "got stung", "OTHER_PERSON"),
])
def test_each_kind_of_context_discounts_a_finding(text, phrase, category):
    assert category in judged(text, phrase)


@pytest.mark.parametrize("text, phrase", [
    ("my husband is unresponsive", "my husband is unresponsive"),  # the patient is often a relative
    ("my wife has crushing chest pain", "my wife has crushing chest pain"),
    ("she fell and can't get up", "she fell and can't get up"),
    ("my 3 week old has a fever", "has a fever"),
])
def test_a_present_finding_about_the_patient_counts(text, phrase):
    assert judged(text, phrase) == set()


def test_a_negation_inside_a_negative_finding_is_the_finding_itself():
    assert judged("he is not breathing", "he is not breathing", negative_named=True) == set()
    assert "NEGATED_EXISTENCE" in judged("he is not breathing", "breathing")


def test_a_negation_does_not_reach_into_the_next_sentence():
    text = "There's no alcohol involved. It's her citalopram, about 25 tablets."
    assert judged(text, "about 25 tablets") == set()
    assert "NEGATED_EXISTENCE" in judged("There's no alcohol or tablets involved.", "tablets")


def test_within_its_clause_a_number_in_a_list_is_not_denied_by_the_finding_before_it():
    def number(text, phrase):
        start = text.index(phrase)
        return context.judge(text, [(start, start + len(phrase))], within_clause=True)[0]

    assert number("no chest pain, sats 84%", "sats 84%") == set()
    assert number("stroke last year, BP 220/120 now", "BP 220/120") == set()
    assert "HISTORICAL" in number("BP 220/120 last year", "BP 220/120")
    assert "RESOLVED" in number("pulse was 180, settled now", "pulse was 180")  # a resolution follows its clause
