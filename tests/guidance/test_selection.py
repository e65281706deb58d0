"""Card selection: each card for a call that needs it, by findings, rules, words or meaning; age, level,
negation, precedence and the fallbacks. The calls are written here, not taken from any evaluation set."""
import pytest

from triage_site.classification import decision_points, rules
from triage_site.guidance import selection

CALLS = [  # (card, level, a call that needs it)
    ("cpr_adult", 0, "My husband collapsed, he's not breathing and his lips are going blue"),
    ("cpr_child", 0, "my daughter is 6, she's lying there not breathing, please help"),
    ("cpr_infant", 0, "my 3 month old baby has stopped breathing and is floppy"),
    ("choking", 0, "he's choking on a sweet and can't get any air in"),
    ("severe_bleeding", 0, "the blade went into his leg and blood is spurting out"),
    ("unconscious_breathing", 1, "she won't wake up but she is breathing normally"),
    ("stroke", 1, "his face has dropped on one side and his speech is slurred"),
    ("chest_pain", 1, "crushing pain in the middle of my chest going down my left arm"),
    ("breathing_difficulty", 1, "asthma attack, her inhaler isn't helping and she can only say a word at a time"),
    ("anaphylaxis", 0, "after eating peanuts her throat is swelling up and she has an epipen"),
    ("seizure", 0, "my brother is on the floor having a seizure, shaking all over"),
    ("overdose_poisoning", 1, "she swallowed a whole packet of sleeping tablets an hour ago"),
    ("childbirth", 0, "my wife is in labour and the baby's head is coming out now"),
    ("burns", 2, "he spilled boiling water over his arm and it's blistering badly"),
    ("heat_illness", 1, "working outside in the heat all day, now he's confused and his skin is hot and dry"),
    ("hypothermia", 1, "we found her outside in the snow, she's ice cold and very drowsy"),
    ("drowning", 0, "we just pulled a boy out of the swimming pool"),
    ("electrocution", 0, "he touched a live wire in the garage and got an electric shock"),
    ("major_trauma", 1, "a car hit a cyclist at speed, he's lying in the road and can't feel his legs"),
    ("diabetic_emergency", 1, "my son is diabetic, he's sweaty and shaky and confused, I think he's having a hypo"),
    ("suicidal_caller", 1, "I've got the pills here and I'm going to kill myself tonight"),
    ("scene_safety", 1, "there's a man outside with a machete threatening people"),
    ("general_emergency", 0, "please come quickly something is very wrong with my dad"),
    ("urgent_care", 2, "I've had tummy pain and vomiting since this morning"),
    ("self_care", 4, "can I get a repeat prescription for my hay fever tablets"),
]


def choose(text, level, loaded_model):
    _, encoder_name = loaded_model
    from triage_site.classification import encoder

    sources = set(rules.red_flags(text).fired)
    (cards, strengths), = selection.select_batch([text], [level], [sources], encoder.encode_with(encoder_name),
                                                 encoder_name)
    return [card.id for card in cards], strengths


def _card_of(call):
    return call[0]


@pytest.mark.parametrize(("card_id", "level", "text"), CALLS, ids=[_card_of(call) for call in CALLS])
def test_each_card_is_chosen_for_a_call_that_needs_it(card_id, level, text, loaded_model):
    chosen, strengths = choose(text, level, loaded_model)
    assert card_id in chosen, (chosen, strengths)
    assert len(chosen) <= selection.MAX_CARDS_URGENT + 1


def test_every_card_has_a_selection_test():
    assert {_card_of(call) for call in CALLS} == set(selection.CARDS)


def test_a_level_0_or_1_request_always_gets_a_send_help_now_card(loaded_model):
    for text in ("something is wrong", "my mum fell over"):
        for level in (0, 1):
            chosen, _ = choose(text, level, loaded_model)
            assert any(selection.CARDS[card].send_help_now for card in chosen), (text, level, chosen)


def test_level_3_and_4_get_self_care_not_an_emergency_card(loaded_model):
    chosen, _ = choose("I burned my finger on the oven, it's a bit red", 3, loaded_model)
    assert chosen == ["self_care"]


def test_negated_words_do_not_choose_a_card():
    assert "choking" not in selection.exact_triggers("he is not choking, he just has a cough", set())
    assert "choking" in selection.exact_triggers("he is choking", set())


@pytest.mark.parametrize("text", [
    "my brother has got his dad's shotgun and says he'll use it",
    "the farmer is waving a rifle at the walkers",
    "the cable by the door is still sparking and he's lying next to it",
])
def test_a_firearm_or_live_sparking_cable_at_the_scene_chooses_the_scene_safety_card(text):
    assert "scene_safety" in selection.exact_triggers(text, set())


def test_no_firearm_at_the_scene_is_no_scene_safety_card():
    assert "scene_safety" not in selection.exact_triggers("there's no shotgun in the house, the police took it", set())


@pytest.mark.parametrize(("text", "card"), [
    ("a car ran over her foot in the car park", "major_trauma"),
    ("penetrating injury to the abdomen, nail gun", "major_trauma"),
    ("food stuck and he can't get it up", "choking"),
    ("contact with a live cable, entry burn on the right palm", "burns"),
])
def test_mechanisms_and_clinical_terms_trigger_their_cards(text, card):
    assert card in selection.exact_triggers(text, set())


def test_cpr_supersedes_the_recovery_position_and_the_age_picks_the_cpr_card():
    strengths = {"cpr_adult": 1.0, "cpr_child": 1.0, "cpr_infant": 1.0, "unconscious_breathing": 0.8}
    assert [c.id for c in selection.choose("my husband won't wake up", 0, strengths)] == ["cpr_adult"]
    assert [c.id for c in selection.choose("my son, he's five, won't wake up", 0, strengths)] == ["cpr_child"]
    assert [c.id for c in selection.choose("the baby, six weeks old, won't wake", 0, strengths)] == ["cpr_infant"]


def test_cpr_keeps_the_breathing_difficulty_card_which_hands_over_to_it():
    """Blue lips and no words may be a conscious person fighting for air: that card's last step is CPR."""
    strengths = {"cpr_adult": 1.0, "breathing_difficulty": 0.9, "unconscious_breathing": 0.8}
    text = "asthma attack, she can't talk, lips blue, inhaler not working"
    assert [c.id for c in selection.choose(text, 0, strengths)] == ["cpr_adult", "breathing_difficulty"]
    assert "CPR" in selection.CARDS["breathing_difficulty"].steps[-1]


def test_the_drowning_card_keeps_the_recovery_position_and_breathing_cards_beside_it():
    """Its own steps branch on breathing; the other two add detail for a rescued person and never contradict it."""
    strengths = {"drowning": 1.0, "unconscious_breathing": 0.8, "breathing_difficulty": 0.6}
    pulled_out = "we pulled him out of the lake, he won't wake up, breathing fast and noisy"
    assert [c.id for c in selection.choose(pulled_out, 0, strengths)] == [
        "drowning", "unconscious_breathing", "breathing_difficulty"]


def test_a_life_threat_shows_up_to_three_cards_and_other_levels_two():
    strengths = {"major_trauma": 1.0, "severe_bleeding": 0.9, "scene_safety": 0.8, "burns": 0.7}
    crash = "car into a wall, driver bleeding heavily, petrol leaking"
    assert [c.id for c in selection.choose(crash, 0, strengths)] == ["major_trauma", "severe_bleeding", "scene_safety"]
    assert [c.id for c in selection.choose(crash, 2, strengths)] == ["major_trauma", "severe_bleeding"]


@pytest.mark.parametrize(("text", "dropped"), [
    ("he collapsed in the shop and won't wake up but he's breathing normally", True),
    ("unresponsive, breathing fine, pulse 90", True),
    ("she's breathing OK but she is not waking up", True),
    ("he's breathing, kind of, a big gasp now and then", False),        # gasping is not breathing normally
    ("I think she's breathing, she won't wake", False),                 # doubt keeps CPR
    ("Is he breathing? I can't see his chest move", False),             # a question is not an answer
    ("he was breathing a minute ago and now he has stopped breathing", False),
    ("my dad collapsed and won't wake up", False),                      # nothing said about breathing
    ("he hasn't stopped breathing and he isn't gasping, breathing steady, can't wake him", True),
    ("breathing regularly, no gasping, but she won't wake", True),
    ("he isn't gasping, he's just not breathing", False),
])
def test_a_call_that_says_the_person_breathes_normally_gets_no_cpr_card(text, dropped):
    strengths = {"cpr_adult": 1.0, "unconscious_breathing": 0.7}
    chosen = [c.id for c in selection.choose(text, 0, strengths)]
    assert chosen == (["unconscious_breathing"] if dropped else ["cpr_adult"])  # CPR supersedes the recovery position


def test_a_send_help_now_card_survives_a_level_1_verdict_but_not_level_3():
    assert [c.id for c in selection.choose("not breathing", 1, {"cpr_adult": 1.0})] == ["cpr_adult"]
    assert [c.id for c in selection.choose("not breathing", 3, {"cpr_adult": 1.0})] == ["self_care"]


def test_a_changed_urgency_chooses_again_from_the_stored_strengths():
    detail = {"card_triggers": {"chest_pain": 0.7, "no_such_card": 1.0, "stroke": "bad"}}
    assert [c.id for c in selection.rechoose("chest feels tight", 1, detail)] == ["chest_pain"]
    assert [c.id for c in selection.rechoose("chest feels tight", 4, detail)] == ["self_care"]
    assert [c.id for c in selection.rechoose("chest feels tight", 0, {})] == ["general_emergency"]


@pytest.mark.parametrize(("text", "group"), [
    ("my son, he's five", "child"), ("her son, six weeks old", "infant"), ("72 yo male", "adult"),
    ("my toddler", "child"), ("the baby", "infant"), ("he's 30 minutes late", "adult"), ("4F", "child"),
    # a unit after "she is": months and weeks are not years, and pregnancy weeks are not the patient's age
    ("my grandson is 15 months and went limp", "child"), ("she's 7 weeks, floppy", "infant"),
    ("she is 20 weeks pregnant", "adult"), ("he's 6 years, not breathing", "child"),
    ("my wife, she's 38 weeks, contractions every 3 minutes, now she collapsed", "adult"),
    ("she is 7 months and bleeding, her waters have not gone", "adult"),
    ("she's 8 months, a bump on her head due to a fall", "infant"),
    # typed in a hurry: no apostrophe, a word before the number, "little one" not read as "little 1"
    ("my son fell in the pool hes 4 i got him out", "child"), ("shes only 3 and not moving", "child"),
    ("MY LITTLE ONE WAS IN THE POOL", "child"), ("a Year 4 boy collapsed in the playground", "child"),
    ("shes 11 months she went limp", "infant"), ("hes only 19 and took a load of pills", "adult"),
    # a number joined to a child's noun, and clinical shorthand; counts, distances and times are not ages
    ("a girl of about eight was pulled from the pool", "child"), ("her daughter, seven, won't wake", "child"),
    ("my brother 9 touched the wire", "child"), ("the boy I look after is six", "child"), ("M 4y, apnoeic", "child"),
    ("my son took 8 tablets", "adult"), ("her son collapsed about 2 hours ago", "adult"),
    ("the boy about 20 metres away", "adult"), ("my son, 2 days ago he fell", "adult"), ("my son 24 collapsed", "adult"),
    # a transcript's answer to the age question
    ("Dispatcher: How old is she?\nCaller: Four. She went blue", "child"),
    ("Q: how old is the baby? A: about 5 months", "infant"), ("How old is he? Seventy, I think", "adult"),
    ("How old is he? 2 hours ago he fell", "adult"),
    # the clinical shorthand for months and weeks of age; the same numbers as a duration say nothing of age
    ("14/12 F, unresponsive, not breathing", "child"), ("4/12 M found in cot, apnoeic", "infant"),
    ("6/52 ex-prem infant, apnoeas", "infant"), ("8/52 persistent cough, now not breathing", "adult"),
    # an age said by a birthday; a colour that something turned is not an age
    ("he only had his first birthday on Saturday, not breathing", "child"), ("shes just turned one, limp", "child"),
    ("she'd be one next month, not breathing", "infant"), ("her lips turned blue", "adult"),
    # shorthand for an infant, a primary-school year and a junior team
    ("INF 3/12 found in cot, apnoeic", "infant"), ("Inf 10/12, choked on a toy, now unresp", "infant"),
    ("ECG shows inf ST elevation, now in arrest", "adult"), ("a boy in year 3 choked and collapsed", "child"),
    ("one of the lads at the under-10s match went down", "child"), ("a year 11 pupil collapsed", "adult"),
    # ages in words past eighteen, a range, the caller's own age; a span of years is not an age
    ("How old is she? C: Forty-one. She had a baby three weeks ago", "adult"), ("he's seventy two", "adult"),
    ("she's about ten or eleven months, went limp", "infant"), ("my son is 5 or 6, not breathing", "child"),
    ("I'm 64 and had a stent 5 years back", "adult"), ("im only 9 and my mum wont wake up", "child"),
    ("Im 2 minutes away, the kid is not breathing", "child"), ("he's had epilepsy for 10 years, the baby", "infant"),
    # a baby who is not the patient: sweets, and a baby moving in the womb
    ("my dad is drowsy, I've got jelly babies here", "adult"), ("I'm 24 weeks pregnant, baby's moving", "adult"),
    ("35 wks, baby kicking, I fainted", "adult"),
])
def test_age_group(text, group):
    assert selection.age_group(text) == group


def test_a_word_for_a_baby_hides_only_the_cards_with_a_version_for_babies():
    """With no age said, "baby" shows a baby is in the call, not that the baby is the patient."""
    mother = "I had my baby three weeks ago and I can't go on, I'm going to take all my tablets. The baby's asleep."
    assert "suicidal_caller" in [c.id for c in selection.choose(mother, 1, {"suicidal_caller": 1.0})]
    newborn = "my wife just had the baby, it's not breathing"
    assert [c.id for c in selection.choose(newborn, 0, {"cpr_adult": 1.0, "cpr_infant": 1.0})] == ["cpr_infant"]
    stated = "my baby is 4 months old and I think he's having a stroke"
    assert "stroke" not in [c.id for c in selection.choose(stated, 1, {"stroke": 1.0})]


# --- the learned head overrules one-clause triggers ------------------------------------------------------------
def test_a_card_the_head_all_but_rules_out_is_dropped_unless_a_red_flag_rule_names_it():
    strengths = {"stroke": 1.0, "cpr_adult": 1.0, "seizure": 0.7}
    probabilities = {"stroke": 0.03, "cpr_adult": 0.02, "seizure": 0.5}
    assert selection.overruled(strengths, probabilities, kept={"cpr_adult"}, veto_below=0.1) == {
        "cpr_adult": 1.0, "seizure": 0.7}


def test_nothing_is_overruled_without_the_head_or_for_a_card_it_does_not_know():
    strengths = {"stroke": 1.0, "general_emergency": 1.0}
    assert selection.overruled(strengths, None, kept=set(), veto_below=0.1) == strengths
    assert selection.overruled(strengths, {"stroke": 0.5}, kept=set(), veto_below=0.1) == strengths
    assert selection.overruled(strengths, {"stroke": 0.01}, kept=set(), veto_below=0.0) == strengths


def test_rule_cards_are_the_cards_whose_red_flag_rules_were_cited():
    assert {"cpr_adult", "cpr_child", "cpr_infant"} <= selection.rule_cards({"not_breathing", "some_finding"})
    assert selection.rule_cards({"some_finding"}) == set()


def test_someone_who_says_they_cannot_breathe_gets_the_breathing_card_and_a_collapse_keeps_cpr():
    """Both are level 0; the words of a conscious caller name the breathing-difficulty card, the same words
    with a collapse or no response the CPR cards."""
    awake = rules.red_flags("my mum is sitting up saying she can't breathe, her lips are bluish")
    collapsed = rules.red_flags("he collapsed in the kitchen and he can't breathe")
    assert awake.level == collapsed.level == 0
    assert selection.rule_cards(awake.fired) == {"breathing_difficulty"}
    assert {"cpr_adult", "cpr_child", "cpr_infant", "breathing_difficulty"} <= selection.rule_cards(collapsed.fired)
    assert selection.rule_cards(rules.red_flags("she is not unconscious, she just can't get any air").fired) == {
        "breathing_difficulty"}
    came_round = rules.red_flags("he collapsed but he has come round now and he says he can't breathe")
    assert came_round.level == 0 and selection.rule_cards(came_round.fired) == {"breathing_difficulty"}


@pytest.mark.parametrize(("text", "cpr_kept"), [
    ("conscious and talking, no CPR needed, she's just very breathless", False),
    ("should I start CPR on her? she's awake and sitting up", False),
    ("we started CPR two minutes ago", True),
    ("he has no pulse", True),
])
def test_cpr_named_is_level_0_but_only_cpr_under_way_keeps_the_cpr_card(text, cpr_kept):
    """A mention of CPR, even "no CPR needed", keeps level 0; the CPR card is then the trigger word's and the
    head's to give (ConText discounts "no CPR"), not a rule's."""
    found = rules.red_flags(text)
    assert found.level == 0
    assert ("cpr_adult" in selection.rule_cards(found.fired)) is cpr_kept


def test_cpr_said_not_to_be_needed_triggers_no_cpr_card():
    text = "conscious and talking, no CPR needed, she's just very breathless"
    assert "cpr_adult" not in selection.exact_triggers(text, set(rules.red_flags(text).fired))
    assert "cpr_adult" in selection.exact_triggers("they are doing CPR on him now", set())


def test_an_overrulable_rule_triggers_its_card_but_does_not_keep_it_from_the_head():
    """The stroke rule also reads the slurring of a hypothermic or hypoglycaemic caller: it triggers the
    stroke card like a finding, and the head, reading the whole call, may drop it."""
    assert selection.rule_cards({"stroke"}) == set()
    assert selection.exact_triggers("slurring and very cold", {"stroke"})["stroke"] == selection.EXACT
    assert "stroke" not in selection.combined({}, {"stroke": 1.0}, {"stroke": 0.01, "hypothermia": 0.9},
                                              selection.rule_cards({"stroke"}), veto_below=0.2)


def test_the_veto_applies_in_selection_and_the_rule_card_survives_it(loaded_model, monkeypatch):
    text = "he's choking on a sweet and can't get any air in"
    before, strengths = choose(text, 0, loaded_model)
    assert "choking" in before and strengths["choking"] == 1.0
    monkeypatch.setattr(selection, "head_probabilities_batch",
                        lambda texts, clauses, name: [{"choking": 0.01} for _ in texts])
    monkeypatch.setattr(selection, "rule_cards", lambda sources: set())
    after, strengths = choose(text, 0, loaded_model)
    assert "choking" not in after and "choking" not in strengths
    assert any(selection.CARDS[card].send_help_now for card in after)  # level 0 keeps a send-help-now card
    monkeypatch.undo()
    monkeypatch.setattr(selection, "head_probabilities_batch",
                        lambda texts, clauses, name: [{"choking": 0.01} for _ in texts])
    assert "choking" in choose(text, 0, loaded_model)[0]  # the choking rule names it: kept


def test_a_clause_that_says_the_person_breathes_triggers_no_cpr_phrase(loaded_model):
    from triage_site.classification import encoder
    from triage_site.guidance.clauses import clause_vectors_batch

    _, encoder_name = loaded_model
    encode = encoder.encode_with(encoder_name)
    # The first sits next to the CPR card's phrase "my dad dropped to the floor and isn't breathing properly".
    texts = ["my dad dropped to the floor and is breathing properly", "he's not breathing at all"]
    breathing, arrest = selection.phrase_triggers_batch(texts, clause_vectors_batch(texts, encode), encode,
                                                        encoder_name)
    assert not {"cpr_adult", "cpr_child", "cpr_infant"} & set(breathing)
    assert "cpr_adult" in arrest
    assert selection.contradicted("cpr_adult", texts[0], (0, len(texts[0])))
    assert not selection.contradicted("cpr_adult", texts[1], (0, len(texts[1])))
    assert not selection.contradicted("choking", texts[0], (0, len(texts[0])))  # no guarded finding


def test_a_request_keeps_the_card_text_it_was_shown_after_the_library_moves_on():
    """The audit and the answer's prompt follow what the dispatcher read out, not the library's newer text."""
    from triage_site.guidance.selectors import card_views

    choking = selection.CARDS["choking"]
    old = {**choking.reference(), "version": choking.version + 1}  # the library has since gone back, say
    old_text = {**choking.text(), "version": old["version"], "steps": ["An older first step."]}
    retired = {"id": "retired_card", "version": 3, "title": "A retired card", "send_now": False}
    retired_text = {**selection.CARDS["burns"].text(), "id": "retired_card", "version": 3}
    before_texts = {"id": "cpr_adult", "version": 1, "title": "CPR", "send_now": True}  # stored with no text
    references = [old, retired, before_texts, {"id": "no_such_card"}, "junk"]
    shown = selection.shown_cards(references, [old_text, retired_text, "junk"])
    assert [card.id for card in shown] == ["choking", "retired_card", "cpr_adult"]
    assert shown[0].steps == ("An older first step.",) and shown[0].version == old["version"]
    assert shown[0].for_prompt()["steps"] == ["An older first step."]
    assert shown[1].steps == selection.CARDS["burns"].steps and shown[1].title == "A retired card"
    assert shown[2] is selection.CARDS["cpr_adult"]
    view = card_views([old], [old_text])[0]
    assert view["steps"] == ["An older first step."] and view["version"] == old["version"]
    assert selection.shown_cards([old], [{**old_text, "steps": "not a list"}])[0] is choking
    assert selection.shown_cards([old], [])[0] is choking  # no stored text: the library's


def test_stored_texts_keep_every_version_shown():
    cpr, choking = selection.CARDS["cpr_adult"], selection.CARDS["choking"]
    kept = selection.texts_kept([], [cpr])
    assert kept == [cpr.text()]
    older = {**choking.text(), "version": 0, "steps": ["Old words."]}
    kept = selection.texts_kept([*kept, older], [choking, cpr])
    assert [(text["id"], text["version"]) for text in kept] == [
        ("cpr_adult", cpr.version), ("choking", 0), ("choking", choking.version)]


def test_a_measured_fever_rules_out_the_hypothermia_card():
    strengths = {"hypothermia": 1.0}
    rigors = "my mum is 71, shivering uncontrollably, temp 39.6, heart 124, confused about what day it is"
    assert [c.id for c in selection.choose(rigors, 1, strengths)] == ["general_emergency"]
    cold = "found him in the snow by the gate, shivering, temp 34.1, very drowsy"
    assert [c.id for c in selection.choose(cold, 1, strengths)] == ["hypothermia"]
    no_fever = "pulled out of the lake, shivering hard, no fever, temp 37.1 an hour ago was fine"
    assert "hypothermia" in [c.id for c in selection.choose(no_fever, 1, strengths)]


def test_an_ingestion_read_from_numbers_or_a_button_battery_names_the_poisoning_card():
    """The numbers' decision point names the ingestion finding as its source, so its card is chosen as exactly
    as a finding's; the button-battery rule is one of the card's rules."""
    for text in ("took 30 paracetamol last night, feel totally fine", "my 2 year old chewed some of nan's gliclazide"):
        readings = decision_points.danger_readings(text)
        sources = {support.source for support in decision_points.point_b(text, [], readings)}
        assert "overdose_poisoning" in selection.exact_triggers(text, sources), sources
    assert "overdose_poisoning" in selection.rule_cards({"button_battery"})


def test_the_ketoacidosis_and_airway_burn_rules_name_their_cards_and_sudden_sight_loss_the_stroke_card():
    """High sugar with drowsiness is the diabetic card's other half; singed facial hair after a flash, the burns
    card's; a sudden loss of sight, like the stroke rule, triggers the stroke card but the head may drop it."""
    assert selection.rule_cards({"ketoacidosis"}) == {"diabetic_emergency"}
    assert selection.rule_cards({"airway_burn"}) == {"burns"}
    assert selection.rule_cards({"sudden_vision"}) == set()
    assert selection.exact_triggers("a curtain came down over my left eye", {"sudden_vision"})["stroke"] == \
        selection.EXACT
