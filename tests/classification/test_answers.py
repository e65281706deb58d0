"""A call-taker's yes-or-no question is read together with the caller's answer."""
import pytest

from triage_site.classification import rules
from triage_site.classification.answers import as_statements
from triage_site.classification.reading import readable


@pytest.mark.parametrize("asked, stated", [
    ("Dispatcher: Is he breathing? Caller: No.", "Dispatcher: he is not breathing. Caller: No."),
    ("CT: Is she awake?\nC: Nope, nothing", "CT: she is not awake.\nC: Nope, nothing"),
    ("Is the baby breathing normally? Yes, a bit snuffly", "the baby is breathing normally. Yes, a bit snuffly"),
    ("Can you wake him? No", "you cannot wake him. No"),
    ("Is she still fitting? Caller: No", "she is no longer fitting. Caller: No"),
    ("Does he have chest pain? Caller: No", "he does not have chest pain. Caller: No"),
    ("Okay, is anyone hurt? No, we're fine", "Okay, no one is hurt. No, we're fine"),
    ("Is anyone trapped? Yes, the driver", "someone is trapped. Yes, the driver"),
    ("Any gasping? No.", "no gasping. No."),
    ("Any fever, rash or stiff neck? Caller: No", "no fever, no rash or stiff neck. Caller: No"),
    ("Anything in her mouth? Yes, a grape", "something in her mouth. Yes, a grape"),
    ("Are you having chest pain, breathlessness? No", "you are not having chest pain, no breathlessness. No"),
    ("Any fever, trouble swallowing or breathing? No", "no fever, no trouble swallowing or breathing. No"),
])
def test_an_answered_question_reads_as_the_statement_it_makes(asked, stated):
    assert as_statements(asked) == stated


@pytest.mark.parametrize("unchanged", [
    "Is he breathing? Caller: I think so",  # a hedge
    "Is he breathing? No idea, I can't see him",
    "Is he breathing? Not sure",
    "Any bleeding? Not really, a bit pink",
    "Is she awake and talking? No",  # which of the two is denied?
    "Any fever or rash? Yes",  # which of the two is affirmed?
    "Is she not breathing? Yes",  # a negated question
    "What is he doing? No, sorry",  # not a yes-or-no question
    "Is he breathing?",  # not answered
    "Any fever or is she unwell in herself? No",  # two questions
])
def test_hedges_ambiguous_and_open_questions_are_left_as_typed(unchanged):
    assert as_statements(unchanged) == unchanged


def test_reading_twice_changes_nothing_more():
    call = "Dispatcher: Is he awake? Caller: No. Dispatcher: Any gasping? Caller: No."
    assert readable(readable(call)) == readable(call)


def test_a_no_to_is_he_breathing_is_an_arrest_and_a_yes_is_not():
    assert rules.red_flags("Dispatcher: Is he breathing? Caller: No, nothing.").level == 0
    assert "not_breathing" not in rules.red_flags(
        "Dispatcher: Is he breathing? Caller: Yes. Dispatcher: Any gasping? Caller: No.").fired
    assert "not_breathing" in rules.red_flags("Dispatcher: Any gasping? Caller: Yes, every few seconds").fired


def test_a_no_to_is_she_awake_is_unresponsive():
    assert "unresponsive" in rules.red_flags("CT: Is she awake? C: No, I'm shaking her").fired
    assert "unresponsive" not in rules.red_flags("CT: Is she awake? C: Yes, talking to me").fired


@pytest.mark.django_db
def test_intake_reads_the_answer_and_stores_the_call_as_typed():
    from triage_site.intake import services

    typed = "Dispatcher: Is your dad breathing? Caller: No!"
    request = services.store_request(text=typed)
    assert request.rule_urgency == 0 and request.text == typed
