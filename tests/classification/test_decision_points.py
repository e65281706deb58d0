"""The ESI decision points: each supports a level and quotes its evidence; the most urgent one wins."""
import pytest

from triage_site.classification import decision_points, encoder, rules
from triage_site.classification.measurements import measure


def supports(text, encode=None):
    found, _ = decision_points.assess_batch([text], [rules.red_flags(text)], encode, "minilm" if encode else None)
    return found[0]


@pytest.fixture(scope="module")
def encode():
    return encoder.encode_with("minilm")


@pytest.mark.parametrize("text, evidence", [
    ("sats 76% and she cannot get a word out", "sats 76%"),
    ("resps 5/min, pinpoint pupils", "resps 5"),
    ("BP 65/40 and clammy", "BP 65/40"),
])
def test_point_d_critical_values_support_level_0(text, evidence):
    found = decision_points.point_d(measure(text))
    assert [s.level for s in found] == [0] and evidence in found[0].evidence


def test_point_d_reads_heart_and_breathing_rates_by_age():
    assert decision_points.point_d(measure("HR 150, 2 yo")) == []  # normal for a toddler
    (adult,) = decision_points.point_d(measure("HR 150, 45 yo"))
    assert adult.level == 1 and "older child or adult" in adult.reason
    (infant,) = decision_points.point_d(measure("6 week old, breathing rate 65"))
    assert infant.level == 1 and "infant" in infant.reason


def test_point_d_ignores_normal_and_historical_values():
    assert decision_points.point_d(decision_points.danger_readings("sats 97%, pulse 80, temp 37.1")) == []
    assert decision_points.point_d(decision_points.danger_readings("history of sats 85 last year")) == []


@pytest.mark.parametrize("text, reason", [
    ("my 5 week old feels hot, temp 38.3", "fever in a baby"),
    ("10 day old baby is very sleepy today", "an unwell newborn"),
    ("33 weeks pregnant, BP 150/100", "raised blood pressure at 33 weeks"),
    ("took 24 tablets an hour ago but says she feels fine", "a significant ingestion"),
    ("took about 30 paracetamol last night, feel totally fine", "a significant ingestion"),
    ("took about 30 paracetamol last night around 11, feel totally fine now", "a significant ingestion"),
    ("My 2 year old got into her nan's handbag and chewed some gliclazide, 3 tablets missing",
     "a small child who swallowed someone's medicine"),
    ("my 19 month old ate a few of grandad's heart pills, playing normally", "a small child who swallowed"),
])
def test_point_b_high_risk_situations_read_from_numbers(text, reason):
    found = decision_points.point_b(text, [], decision_points.danger_readings(text))
    assert any(reason in s.reason and s.level == 1 for s in found)


def test_point_b_age_rules_do_not_fire_for_older_children():
    text = "my 2 year old has a temp of 38.3"
    assert decision_points.point_b(text, [], decision_points.danger_readings(text)) == []


@pytest.mark.parametrize("text", [
    "my 18 month old bit into a dishwasher tablet, drooling a bit",  # a household product, not a medicine
    "my 3 year old had two doses of Calpol by mistake",
    "my 9 year old swallowed two of her friend's tablets",  # older than the small-child age
    "she takes 500mg tablets of paracetamol for her back",  # a strength, not a count
    "pain 6 out of 10 with paracetamol",
])
def test_point_b_ingestion_rules_need_a_count_or_a_small_child_and_a_medicine(text):
    assert decision_points.point_b(text, [], decision_points.danger_readings(text)) == []


@pytest.mark.usefixtures("loaded_model")
@pytest.mark.parametrize("text, point, level", [
    ("I can't rouse him at all, he's not reacting when I shake him", "A", 0),
    ("she has stopped taking breaths, just the odd gasp", "A", 0),
    ("face has dropped on one side and her speech is slurred", "B", 1),
    ("all of a sudden she is muddled and does not know where she is", "B", 1),
])
def test_points_a_and_b_find_paraphrased_findings_and_quote_them(encode, text, point, level):
    found = [s for s in supports(text, encode) if s.point == point and "red-flag" not in s.reason]
    assert found and found[0].level == level and found[0].evidence in text


@pytest.mark.usefixtures("loaded_model")
def test_a_finding_without_a_threshold_informs_the_head_but_does_not_decide(encode):
    from triage_site.classification import findings

    text = "pressure in the middle of the chest going into the jaw"
    matches, clause_features = findings.match_batch([text], encode, "minilm")
    chest = findings.FINDINGS.index(next(f for f in findings.FINDINGS if f.id == "cardiac_chest_pain"))
    assert findings.FINDINGS[chest].threshold is None
    assert clause_features[0][chest] > findings.FEATURE_FLOOR
    assert not decision_points.point_b(text, matches[0], [])


@pytest.mark.usefixtures("loaded_model")
@pytest.mark.parametrize("text", [
    "no chest pain, just a sore throat",
    "what would I do if he stopped breathing? he's fine, just asking",
    "she had a fit and came round, she's back to normal now",
])
def test_discounted_findings_support_nothing(encode, text):
    from triage_site.classification import findings

    matches, _ = findings.match_batch([text], encode, "minilm")
    assert matches == [[]]
    assert decision_points.supports_for(text, matches[0]) == []


def test_the_most_urgent_point_wins_and_is_named_in_the_reasoning():
    found = [decision_points.Support("B", 1, "stroke signs", "face drooping"),
             decision_points.Support("A", 0, "not breathing", "not breathing")]
    assert decision_points.most_urgent(found) == 0
    assert found[1].sentence().startswith("Decision point A (life-saving intervention)")
    assert "\u201cface drooping\u201d" in found[0].sentence()


def not_breathing_evidence(text, encode):
    """The clauses of `text` matched to the finding `not_breathing`."""
    from triage_site.classification import findings

    matches, _ = findings.match_batch([text], encode, "minilm")
    return [match.evidence for match in matches[0] if match.finding.id == "not_breathing"]


@pytest.mark.usefixtures("loaded_model")
@pytest.mark.parametrize("text", [
    "He's breathing normally, he just won't open his eyes",
    "he's breathing fine and his colour's OK",
    "He breathe yes, normal. He not wake up.",
    "No, he hasn't stopped breathing and he isn't gasping, he just won't wake",
])
def test_a_clause_that_says_the_person_breathes_is_not_a_breathing_arrest(encode, text):
    # Another clause ("won't open his eyes") may still sit near the finding, below its threshold: not this one.
    assert not [evidence for evidence in not_breathing_evidence(text, encode) if "breath" in evidence.lower()]


@pytest.mark.usefixtures("loaded_model")
@pytest.mark.parametrize("text", [
    "he's not breathing",
    "she took one big breath a minute ago and nothing since",
    "he's only gasping, the odd breath",
])
def test_absence_or_gasping_still_reads_as_a_breathing_arrest(encode, text):
    assert not_breathing_evidence(text, encode)


def test_a_question_about_breathing_is_not_an_answer_to_it():
    from triage_site.classification import findings

    not_breathing = next(f for f in findings.FINDINGS if f.id == "not_breathing")
    text = "CT: Is he breathing? C: I don't know"
    assert not_breathing.contradicted("He's breathing", question=False)
    assert not not_breathing.contradicted("he is not breathing", question=False)
    assert findings.asked(text, 0, text.index("?"))
    assert findings.asked("Dispatcher: Is she breathing", 0, 28)
    assert not findings.asked("she is breathing", 0, 16)


@pytest.mark.parametrize(("clause", "contradicted"), [
    ("he hasn't stopped breathing and he isn't gasping", True),
    ("no gasping, no agonal breaths", True),
    ("he isn't gasping, he's just not breathing", False),  # another cue is left once the denial is taken out
    ("not even gasping", False),
    ("she has stopped breathing", False),
])
def test_a_clause_that_denies_the_arrests_own_words_is_not_a_breathing_arrest(clause, contradicted):
    from triage_site.classification import findings

    not_breathing = next(f for f in findings.FINDINGS if f.id == "not_breathing")
    assert not_breathing.contradicted(clause) is contradicted
    assert not not_breathing.contradicted(clause, question=True)


def test_a_bad_polarity_pattern_names_its_finding(tmp_path):
    from triage_site.classification import findings

    path = tmp_path / "findings.toml"
    path.write_text('[[finding]]\nid = "odd"\npoint = "A"\nlevel = 0\nlabel = "odd"\ndescriptions = ["x"]\n'
                    'contradicted_by = "(unclosed"\n[[reassuring]]\ndescriptions = ["fine"]\n', encoding="utf-8")
    with pytest.raises(findings.FindingsFileError, match="odd"):
        findings.load_library(path)


@pytest.mark.parametrize("text", [
    "It's 31 degrees outside today and I've got a bit of sunburn, what cream should I use?",
    "Pt 81F, c/o UTI symptoms, stinging when passing urine, otherwise well",
])
def test_point_d_does_not_read_the_weather_or_an_age_as_hypothermia(text):
    assert decision_points.point_d(decision_points.danger_readings(text)) == []
