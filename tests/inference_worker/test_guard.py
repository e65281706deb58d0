"""The degeneration guard: each reason fires on degenerate answers and stays quiet on ordinary
dispatcher instructions, checked as the answer streams."""

import pytest

from inference_worker.guard import ECHO, EMPTY, LOOP, OFF_CARD, OFF_CARD_WORDS, REPEATED_TEXT, DegenerationGuard

REPORT = "My father fell off the ladder in the garden and he is not moving at all"
LOCATION = "14 Baker Street, flat 2"

GOOD_ANSWERS = [
    "1. Call an ambulance now and tell them the address.\n2. Keep him still and do not move his neck.\n"
    "3. Do not give him anything to eat or drink.\n4. If he stops breathing, start CPR and keep going until "
    "help arrives.\n5. Stay on the line and keep him warm.\n6. If he vomits, roll him onto his side and keep "
    "the airway clear.\n7. Send someone to the front door to meet the ambulance.",
    # common words and short phrases recur in a normal answer
    "Check that he is breathing. If he is breathing, keep him still and keep him warm. If he is not breathing, "
    "start CPR: push hard and fast in the centre of the chest, and keep the rhythm. Keep the door open and the "
    "lights on, and keep the phone on speaker so the dispatcher can help you.",
    # the address quoted once, and a short piece of the report
    "Send an ambulance to 14 Baker Street, flat 2 now. He fell off the ladder: do not move him.\n"
    "1. Keep him still. 2. Watch his breathing. 3. Call back if anything changes.",
    "1. Call 911.\n2. Check breathing.\n3. Apply pressure.\n4. Stay on the line.\n5. Stay with him.\n"
    "6. Stay calm.\n7. Stay with the caller.\n8. Do not move him.\n9. Do not give food.\n10. Do not leave.",
]


def stream(text, step=5, report=REPORT, location=LOCATION):
    """The guard's verdict as the worker sees it: checked every few characters, then at the finish."""
    guard = DegenerationGuard(report, location)
    for end in range(step, len(text), step):
        reason = guard.check(text[:end])
        if reason:
            return reason, end
    return guard.check_finished(text), len(text)


@pytest.mark.parametrize("answer", GOOD_ANSWERS)
def test_ordinary_instructions_pass(answer):
    assert stream(answer) == (None, len(answer))
    assert stream(answer, step=1) == (None, len(answer))


@pytest.mark.parametrize("answer,reason", [
    ("Keep him still and wait for the ambulance to arrive. " * 4, REPEATED_TEXT),
    ("1. Keep him calm and make sure he is comfortable.\n2. Keep him calm and make sure he is comfortable.\n"
     "3. Keep him calm and make sure he is comfortable.\n", REPEATED_TEXT),
    ("Call for help. " + "-=" * 30, LOOP),
    ("Apply pressure to the wound" + "!" * 60, LOOP),
    ("The patient the patient the patient the patient the patient the patient", LOOP),
    ("Your father fell off the ladder in the garden and he is not moving, so", ECHO),
    ("Go to 14 Baker Street, flat 2. The address is 14 Baker Street flat 2.", ECHO),
])
def test_degenerate_answers_are_caught(answer, reason):
    assert stream(answer)[0] == reason


def test_a_loop_is_caught_early():
    reason, at = stream("Stay calm. " + "Keep breathing slowly. " * 40)
    assert reason in (LOOP, REPEATED_TEXT)
    assert at < 120


@pytest.mark.parametrize("answer", ["", "   \n", "..."])
def test_empty_answer_at_the_finish(answer):
    assert DegenerationGuard().check_finished(answer) == EMPTY


def test_no_report_and_one_word_location_never_echo():
    guard = DegenerationGuard("", "home")
    assert guard.check_finished("Stay at home. The ambulance is coming home to you, stay home.") is None


CPR_KEY_WORDS = [["chest"], ["push", "press", "compress"], ["defibrillator", "aed", "defib"]]
BLEEDING_KEY_WORDS = [["press", "pressure"], ["wound", "bleed", "blood"], ["cloth", "towel", "dressing", "pad"]]
# the kind of answer the packaged model gave a choking baby: fluent, calm, about something else
CONDOLENCES = ("I am so sorry for your loss. It takes courage to share news like this, and many people have "
               "been through difficult times and found support from family, friends and their community. "
               "Remember that healing takes time and that you are not alone in what you are feeling now, and "
               "that talking about it with someone you trust can make a real difference over the weeks ahead.")


def test_an_answer_is_held_until_it_carries_every_key_step_of_its_card():
    guard = DegenerationGuard(REPORT, LOCATION, [CPR_KEY_WORDS])
    answer = "Stay calm and listen. Kneel beside him and push hard on his chest. Send for the defib "
    held = [end for end in range(1, len(answer) + 1) if guard.check(answer[:end]) is None and not guard.may_show]
    assert guard.may_show
    assert answer[:max(held)].endswith("Send for the defib")  # shown once its last key word is complete


def test_an_answer_about_something_else_is_withdrawn_while_it_streams():
    assert len(CONDOLENCES.split()) > OFF_CARD_WORDS
    guard = DegenerationGuard(REPORT, LOCATION, [CPR_KEY_WORDS, BLEEDING_KEY_WORDS])
    reasons = [guard.check(CONDOLENCES[:end]) for end in range(5, len(CONDOLENCES), 5)]
    assert OFF_CARD in reasons and not guard.may_show
    first = reasons.index(OFF_CARD) * 5 + 5
    assert len(CONDOLENCES[:first].split()) <= OFF_CARD_WORDS + 1  # as soon as it has said that much


@pytest.mark.parametrize("answer,reason", [
    ("Push hard and fast on the centre of his chest, and send someone for the defibrillator.", None),
    ("Push hard and fast on the centre of his chest.", OFF_CARD),                 # two of three key steps
    ("Press a clean towel firmly on the wound.", None),                           # the other card's steps
    ("Press on his chest. Keep pressing the wound.", OFF_CARD),                   # some of each is not enough
])
def test_at_the_finish_the_answer_carries_every_key_step_of_one_card(answer, reason):
    guard = DegenerationGuard(REPORT, LOCATION, [CPR_KEY_WORDS, BLEEDING_KEY_WORDS])
    assert guard.check_finished(answer) == reason


@pytest.mark.parametrize("card_key_words", [(), [CPR_KEY_WORDS, []]])
def test_without_key_words_for_every_card_there_is_no_card_check(card_key_words):
    guard = DegenerationGuard(REPORT, LOCATION, card_key_words)
    assert guard.check_finished(CONDOLENCES) is None and guard.may_show
