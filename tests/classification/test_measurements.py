"""Numbers with their meaning: vital signs with their units, ages, gestation, pain, ingestions."""
import pytest

from triage_site.classification.measurements import measure


def readings(text):
    return {(m.kind, round(m.value, 1)) for m in measure(text)}


@pytest.mark.parametrize("text, expected", [
    ("72M, SOB, sats 84% RA, RR 32", {("spo2", 84), ("resp_rate", 32), ("age_days", 26298.0)}),
    ("oxygen in the low 70s and she can't talk", {("spo2", 72)}),
    ("her oximeter reads 88", {("spo2", 88)}),
    ("resps 4/min, pulse 38", {("resp_rate", 4), ("heart_rate", 38)}),
    ("breathing 6 breaths a minute", {("resp_rate", 6)}),
    ("HR 140 bpm", {("heart_rate", 140)}),
    ("BP 210/120", {("systolic_bp", 210), ("diastolic_bp", 120)}),
    ("blood pressure 80 over 40", {("systolic_bp", 80), ("diastolic_bp", 40)}),
    ("temp 39.5", {("temperature", 39.5)}),
    ("a fever of 104F", {("temperature", 40.0)}),
    ("tympanic 34.9", {("temperature", 34.9)}),
    ("the ear thermometer says 41.3", {("temperature", 41.3)}),
    ("BM 2.1", {("glucose", 2.1)}),
    ("blood sugar 40 mg/dl", {("glucose", 2.2)}),
    ("pain 9/10", {("pain_score", 9)}),
    ("GCS 8, RR 7", {("gcs", 8), ("resp_rate", 7)}),
    ("her finger probe reads 74%", {("spo2", 74)}),
    ("the little oxygen reader keeps saying 72 or 73", {("spo2", 72)}),
    ("her oxygen clip says 79", {("spo2", 79)}),
    ("his pulse keeps saying 150", {("heart_rate", 150)}),
    ("she is 32 weeks pregnant", {("gestation_weeks", 32)}),
    ("34/40 with a headache", {("gestation_weeks", 34)}),
    ("took about 20 tablets 2 hours ago", {("ingested_units", 20), ("hours_since", 2)}),
    ("swallowed a whole packet half an hour ago", {("ingested_units", 16), ("hours_since", 0.5)}),
    ("took 30 paracetamol last night", {("ingested_units", 30)}),
    ("24 x 500 mg paracetamol", {("ingested_units", 24)}),
    ("about 25 tablets of 20mg", {("ingested_units", 25)}),
    ("she takes 500mg tablets", set()),
    ("thermometer say 38.5", {("temperature", 38.5)}),
])
def test_values_are_read_in_one_unit(text, expected):
    assert readings(text) == expected


@pytest.mark.parametrize("text, days", [
    ("my 3 wk old", 21), ("an 8-month-old", 243.2), ("2 day old baby", 2), ("aged 5", 1826.2),
    ("67F", 24471.8), ("72 yo man", 26298.0), ("she is in her 80s", 31046.2), ("newborn", 3),
    ("14/12 F", 425.6), ("6/52 infant", 42), ("5/7 old", 5),
    ("just turned two", 730.5), ("her first birthday", 365.2), ("he'll be one next month", 334.9),
    ("one of my little ones, 19 months, was found", 577.6), ("my baby 7 month, very hot", 212.8),
    ("my son is 5 months", 152), ("baby 8mo choked", 243.2),
])
def test_ages_are_read_in_days(text, days):
    assert ("age_days", days) in readings(text)


def test_a_bare_duration_after_a_child_is_not_an_age_when_it_says_ago_or_pregnant():
    assert not {kind for kind, _ in readings("my son 4 weeks ago had a cold")} & {"age_days"}
    assert not {kind for kind, _ in readings("my girl 6 months pregnant")} & {"age_days"}


@pytest.mark.parametrize("text", [
    "he has had epilepsy for 10 years", "diabetic for 20 yrs, now confused", "I'm 64 and had a stent 5 years back",
    "married 7 years, my husband collapsed", "her heart surgery 4 years earlier", "last tetanus >10 years",
    "type 1 over 30 years", "no fits in 2 years",
])
def test_a_span_of_years_is_not_an_age(text):
    assert not {kind for kind, _ in readings(text)} & {"age_days"}


@pytest.mark.parametrize("text, days", [("i am 42 year", 15340.5), ("my son 5 years, fever", 1826.2),
                                        ("F 72 yrs, collapsed", 26298.0)])
def test_years_after_a_number_are_still_an_age(text, days):
    assert ("age_days", days) in readings(text)


def test_numbers_without_a_meaning_are_not_read():
    assert readings("he is 6 ft tall and lives at number 12") == set()
    assert readings("fell 5 m from a ladder") == set()
    assert readings("fell ~6 m onto concrete") == set()
    assert readings("slipped 3 m into a ditch") == set()
    assert readings("6/52 postpartum, 3/7 of cough, BP 120/80 M") == {("systolic_bp", 120), ("diastolic_bp", 80)}
    assert readings("her lips turned blue and the dial turned 90 degrees") == set()


def test_each_reading_keeps_its_text_to_quote():
    (reading,) = [m for m in measure("Caller says sats are 79% now") if m.kind == "spo2"]
    assert "79" in reading.text and reading.describe().startswith("spo2 79")


@pytest.mark.parametrize("text", [
    "It's 31 degrees outside today and I've a bit of sunburn",
    "Heatwave, 34 degrees in the flat, my gran is tired but chatting",
    "Been working on the roads all day in 33 degrees",
    "the flat's about 35 degrees and she won't use the fan",
    "runner collapsed, ambient 29C",
    "it's been over 30 degrees for days",
    "room temperature 31 C",
])
def test_the_weather_or_a_room_is_not_the_patients_temperature(text):
    assert not {kind for kind, _ in readings(text)} & {"temperature"}


@pytest.mark.parametrize("text, value", [
    ("temp 38.2 today", 38.2),
    ("fever 39 today", 39.0),
    ("it's 39.4 degrees on the thermometer", 39.4),
    ("It's 30 degrees out and she has a temp of 39.2", 39.2),
    ("found in the snow, temp 29", 29.0),
])
def test_a_temperature_named_as_the_patients_is_read_beside_weather_words(text, value):
    assert {v for kind, v in readings(text) if kind == "temperature"} == {value}


def test_an_age_and_sex_in_shorthand_is_not_a_fahrenheit_temperature():
    assert readings("Pt 81F, c/o UTI symptoms") == {("age_days", 29585.2)}
    assert ("temperature", 38.3) in readings("101F fever")
    assert ("temperature", 31.1) in readings("temp 88 F after a night on the floor")
