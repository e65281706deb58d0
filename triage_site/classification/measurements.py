"""Numbers with their meaning: vital signs, ages, weeks of gestation, pain scores and ingestions.

`measure(text)` returns `Measurement`s with a kind, a value in one canonical unit, and the span of
text it came from, so that a decision point can quote it:

| kind | unit | written as, for example |
|---|---|---|
| spo2 | % | "sats 84%", "SpO2 of 91", "oxygen in the low 80s", "oximeter says 76", "finger probe reads 74%", "oxygen clip keeps saying 79", "88% on air" |
| resp_rate | breaths/min | "RR 32", "resps 4/min", "breathing 40 times a minute", "6 breaths a minute" |
| heart_rate | beats/min | "HR 38", "pulse 180", "heart rate of 150", "140 bpm" |
| systolic_bp, diastolic_bp | mmHg | "BP 210/120", "blood pressure 80 over 40", "systolic 75" |
| temperature | °C | "temp 39.5", "38.9C", "fever of 104F" (Fahrenheit converted) |
| glucose | mmol/L | "BM 2.1", "blood sugar 1.8", "glucose 40 mg/dl" (converted) |
| gcs | 3..15 | "GCS 8", "GCS ~13" |
| pain_score | /10 | "pain 9/10", "9 out of 10" |
| age_days | days | "3 wk old", "8-month-old", "2 days old", "67F", "72 yo", "in her 80s", "newborn", "14/12 F", "6/52 infant", "just turned one", "first birthday" |
| gestation_weeks | weeks | "32 weeks pregnant", "34/40", "at 36+2 weeks" |
| ingested_units | tablets | "about 20 tablets", "a whole packet", "30 x 500mg" |
| hours_since | hours | "2 hours ago", "half an hour ago", "20 mins ago" |

Regular expressions are the right tool here: clinical NLP libraries (medspacy, negspacy) find concepts
and their context, not quantities; the context of a number (negated, historical) is judged by the
same ConText pass as any finding (`context.py`).
"""
import re
from dataclasses import dataclass

DAYS = {"day": 1, "d": 1, "week": 7, "wk": 7, "w": 7, "month": 30.4, "mo": 30.4, "m": 30.4, "year": 365.25,
        "yr": 365.25, "y": 365.25}
WORD_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
                "forty": 40, "fifty": 50, "a couple of": 2, "a few": 3, "a dozen": 12, "half an": 0.5,
                "an": 1, "a": 1}
DECADES = {"twenties": 25, "thirties": 35, "forties": 45, "fifties": 55, "sixties": 65, "seventies": 75,
           "eighties": 85, "nineties": 95}
NEWBORN_DAYS = 3
ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
            "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12}
_YEARS_SAID = r"(\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"


@dataclass(frozen=True)
class Measurement:
    kind: str
    value: float
    start: int
    end: int
    text: str

    def describe(self):
        return f"{self.kind.replace('_', ' ')} {self.value:g} (\u201c{self.text}\u201d)"


NUM = r"(\d{1,3}(?:\.\d)?)"
GAP = (r"[\s:=,]*(?:is|are|was|were|of|at|reads?|reading|says|said|saying|showing|shows|showed|around|about|only|just|"
       r"now|down to|up to|~|(?:keeps?|kept|is|was) (?:saying|showing|reading|flashing))?[\s:=,~]*")
_LOW_HIGH = {"low": 2, "mid": 5, "high": 8}
_DOSE_UNIT = r"(?:mg|mcg|ug|g|ml|milligrams?|micrograms?|grams?)\b"
# Medicines often counted by the tablet without the word "tablets" ("took 30 paracetamol").
OVERDOSED = (r"paracetamol|acetaminophen|tylenol|panadol|ibuprofen|nurofen|aspirin|co-?codamol|codeine|tramadol|"
              r"diazepam|zopiclone|sertraline|citalopram|fluoxetine|amitriptyline|propranolol|ferrous sulphate|"
              r"amlodipine|gliclazide|metoprolol|atenolol|bisoprolol|digoxin|methadone|morphine|oxycodone")

PATTERNS = [
    # kind, pattern, value function (match -> float or None)
    ("spo2", rf"\b(?:sp\s?o2|sats?|saturations?|o2|"
             rf"oxygen(?: levels?| saturation| sats| reader| monitor| clip| probe| meter| machine| thing)?|oximeter|"
             rf"pulse ?ox|finger (?:probe|clip|thing|monitor|reader|sensor)){GAP}{NUM}\s*%?",
     lambda m: _in(float(m.group(1)), 40, 100)),
    ("spo2", r"\b(?:sp\s?o2|sats?|saturations?|o2|oxygen(?: levels?| saturation)?|oximeter)[^.;]{0,25}?\bin the"
             r" (low|mid|high)?\s*(\d)0s\b", lambda m: _decade(m.group(2), m.group(1), 40, 100)),
    ("spo2", rf"\b{NUM}\s*%\s*(?:on\s+)?(?:room air|ra\b|on air|air\b|sats|o2|oxygen|spo2)",
     lambda m: _in(float(m.group(1)), 40, 100)),
    ("resp_rate", rf"\b(?:rr|resp(?:iratory)?(?: rate)?|resps|respirations|breathing rate|breaths?){GAP}{NUM}"
                  r"(?!\s*(?:%|mins?|minutes|hours?|hrs?|days?|years?|weeks?))",
     lambda m: _in(float(m.group(1)), 1, 80)),
    ("resp_rate", rf"\b{NUM}\s*(?:breaths?|resps?)\s*(?:a|per|/|an?)?\s*(?:min|minute)",
     lambda m: _in(float(m.group(1)), 1, 80)),
    ("resp_rate", rf"\bbreathing\s+(?:only\s+|about\s+|around\s+)?{NUM}\s*(?:times\s*)?(?:a|per|/)\s*min",
     lambda m: _in(float(m.group(1)), 1, 80)),
    ("heart_rate", rf"\b(?:hr|heart ?rate|pulse(?: rate)?|heart(?: is)? (?:going|racing|beating)(?: at)?){GAP}"
                   rf"{NUM}(?!\s*(?:%|/|over))", lambda m: _in(float(m.group(1)), 15, 300)),
    ("heart_rate", rf"\b{NUM}\s*(?:bpm|beats? (?:a|per) min)", lambda m: _in(float(m.group(1)), 15, 300)),
    ("blood_pressure", r"\b(?:bp|b/p|blood pressure|pressure)[^\d.;]{0,20}?(\d{2,3})\s*(?:/|over)\s*(\d{2,3})\b",
     lambda m: (float(m.group(1)), float(m.group(2)))),
    ("systolic_bp", rf"\b(?:systolic|sbp)(?: bp)?{GAP}{NUM}", lambda m: _in(float(m.group(1)), 30, 300)),
    ("systolic_bp", r"\b(?:bp|blood pressure)\s*(?:is|of|was)?\s*(\d{2,3})\s*systolic",
     lambda m: _in(float(m.group(1)), 30, 300)),
    ("temperature", rf"\b(?:temp(?:erature)?|fever(?: of)?|pyrexial|febrile|t|tympanic|thermometer (?:says?|said|reads?|"
                    rf"read|shows|showed|showing|gave|gives))\s*(?:of|is|was|at|:|=|reading|"
                    rf"up to|around)?\s*{NUM}\s*(?:°|deg(?:rees)?)?\s*([cf])?\b",
     lambda m: None if _named_for_the_air(m) else _temperature(m.group(1), m.group(2))),
    ("temperature", r"\b(\d{2,3}(?:\.\d)?)\s*(?:°|deg(?:rees)?)\s*([cf])?\b|\b(\d{2,3}(?:\.\d)?)\s*([cf])\b",
     lambda m: None if _the_airs(m) else _temperature(m.group(1), m.group(2)) if m.group(1)
     else _bare_temperature(m.group(3), m.group(4))),
    ("glucose", rf"\b(?:bm|blood sugars?|sugars?|glucose|cbg|bg|glucometer|blood glucose){GAP}{NUM}\s*"
                r"(mmol(?:/l)?|mg/?dl)?", lambda m: _glucose(m.group(1), m.group(2))),
    ("gcs", r"\b(?:gcs|glasgow coma (?:scale|score))\s*(?:of|is|was|:|=|~|approx\.?|about|around)?\s*~?(\d{1,2})\b",
     lambda m: _in(float(m.group(1)), 3, 15)),
    ("pain_score", r"\b(\d{1,2})\s*(?:/|out of)\s*10\b", lambda m: _in(float(m.group(1)), 0, 10)),
    ("gestation_weeks", r"\b(\d{1,2})(?:\+\d)?\s*(?:weeks?|wks?|/40)\b(?=[^.;]{0,25}(?:pregnan|gestation|"
                        r"preg\b|along))|\b(\d{1,2})(?:\+\d)?/40\b|\b(?:pregnant|gestation|preg)\D{0,20}?(\d{1,2})"
                        r"(?:\+\d)?\s*(?:weeks?|wks?|/40)",
     lambda m: _in(float(m.group(1) or m.group(2) or m.group(3)), 4, 43)),
    ("age_days", r"\b(\d{1,3})\s*-?\s*(days?|d|weeks?|wks?|w|months?|mos?|m|years?|yrs?|y)\s*-?\s*(?:old|/o|o\b)",
     lambda m: _age(m.group(1), m.group(2))),
    ("age_days", r"\b(?:aged?|age)\s*(\d{1,3})\s*(days?|weeks?|wks?|months?|mos?)?",
     lambda m: _age(m.group(1), m.group(2) or "year")),
    # "72 yo", "i am 42 year"; a span of years is not an age: "for 10 years", "over 40 years", "a stent 5 years
    # back", "diabetic 20 years now"
    ("age_days", r"(?<!\bfor )(?<!\bover )(?<!\bpast )(?<!\blast )(?<!\bin )(?<!\bwithin )(?<!\bafter )"
                 r"(?<!married )(?<!>)\b(\d{1,3})\s*(?:yo|y/o|yrs?|years?)\b"
                 r"(?!\s*(?:ago|back|before|earlier|later|previously|since|now|married|together))",
     lambda m: _age(m.group(1), "year")),
    ("age_days", r"(?<![/\d.])\b(\d{1,3})\s?(?:m|f|male|female)\b(?!\s*(?:/|mins?|g\b|mg|ml|fall|drop|high|deep|away|from|off|up|down|tall|long|wide|onto|into|below|under|ladder|roof))",
     lambda m: _age(m.group(1), "year") if int(m.group(1)) >= 1 else None),
    # Clinical shorthand for a young child's age: "14/12 F" (months), "6/52 ex-prem infant" (weeks), "5/7 old"
    # (days). Read as an age only before a sex, "old" or a word for a baby: "8/52 persistent cough" and "6/52
    # postpartum" are durations.
    ("age_days", r"\b(\d{1,2})/(12|52|7)\s*(?:-?\s*(?:old|o\b)|(?:m|f|male|female|boy|girl|baby|infant|neonate|"
                 r"ex-?prem\w*)\b)", lambda m: _age(m.group(1), {"12": "month", "52": "week", "7": "day"}[m.group(2)])),
    # An age said by a birthday: "just turned one", "his first birthday on Saturday", "she'd be one next month"
    # (a month short of it). "Turned blue" has no number; "turned 90 degrees" is not an age.
    ("age_days", rf"\bturned {_YEARS_SAID}\b(?!\s*(?:degrees?|%|minutes?|mins?|hours?|times?|notch\w*|o.?clock))",
     lambda m: _age(_said_number(m.group(1)), "year")),
    ("age_days", r"\b(?:(\d{1,2})(?:st|nd|rd|th)|(" + "|".join(ORDINALS) + r")) birthday\b",
     lambda m: _age(int(m.group(1)) if m.group(1) else ORDINALS[m.group(2).lower()], "year")),
    ("age_days", rf"\bbe {_YEARS_SAID} next (week|month)\b",
     lambda m: _in(_said_number(m.group(1)) * DAYS["year"] - DAYS[m.group(2).lower()], 0, 120 * 365.25)),
    ("age_days", r"\bin (?:his|her|their|my) (?:(early|mid|late) )?(twenties|thirties|forties|fifties|sixties|"
                 r"seventies|eighties|nineties|[2-9]0s)\b", lambda m: _decade_age(m.group(2))),
    ("age_days", r"\b(?:newborn|new born|new-born|neonate)\b", lambda m: float(NEWBORN_DAYS)),
    # A child's age said bare after the child: "my baby 7 month", "toddler, 20 months,", "my son is 5 months";
    # not "pregnant", "ago" or an age already said with "old".
    ("age_days", r"\b(?:son|daughter|baby|boy|girl|toddler|child|kid|grandson|granddaughter|little ones?|nephew|"
                 r"niece|infant)(?:\s+(?:is|who is|aged))?,?\s+(\d{1,2})\s*(days?|weeks?|wks?|months?|mths?|mos?)\b"
                 r"(?!\s*(?:-?\s*old|ago|pregnant))", lambda m: _age(m.group(1), m.group(2))),
    # "20 tablets", "30 x 500mg", "about 25 of her citalopram", "16 paracetamol"; "500mg tablets" is a strength.
    ("ingested_units", r"\b(?:about|around|roughly|maybe|at least|over|up to)?\s*(?<![/\d.])(\d{1,3})(?![\d.]|\s*" + _DOSE_UNIT + r")"
                       r"\s*(?:x\s*\d+\s*" + _DOSE_UNIT + r"\s*)?(?:of (?:his|her|my|their|the)\s+)?(?:\w+\s)?"
                       r"(?:tablets?|pills?|capsules?|tabs?|caps?|" + OVERDOSED + r")\b",
     lambda m: _in(float(m.group(1)), 1, 500)),
    ("ingested_units", r"\b(?:a |the )?(?:whole|full|entire|half a|half the) (?:packet|pack|box|bottle|strip|blister|"
                       r"tub|jar)s?\b", lambda m: 16.0),
    ("hours_since", r"\b(\d{1,3}|an?|half an|one|two|three|four|five|six|ten|twenty|thirty)\s*"
                    r"(hours?|hrs?|h|minutes?|mins?)\s*ago\b", lambda m: _hours(m.group(1), m.group(2))),
]
COMPILED = [(kind, re.compile(pattern, re.IGNORECASE), value) for kind, pattern, value in PATTERNS]


def _in(value, low, high):
    return value if low <= value <= high else None


def _decade(tens, position, low, high):
    value = int(tens) * 10 + _LOW_HIGH.get(position or "mid", 5)
    return _in(float(value), low, high)


def _temperature(number, scale):
    value = float(number)
    if (scale or "").lower() == "f" or (not scale and 93 <= value <= 110):
        value = round((value - 32) * 5 / 9, 1)
    return _in(value, 25, 45)


def _bare_temperature(number, scale):
    """"38.5C", "101F": a number with only a scale letter. "88F" and "81 F" are a woman's age in shorthand, so a
    bare Fahrenheit reading counts only from 95 F (35 C) up: a colder body is written as a temperature."""
    if scale.lower() == "f" and float(number) < 95:
        return None
    return _temperature(number, scale)


def _decade_age(word):
    years = DECADES.get(word) or int(word[0]) * 10 + 5
    return years * 365.25


def _glucose(number, unit):
    value = float(number)
    if (unit or "").lower().startswith("mg") or (not unit and value > 35):
        value = round(value / 18, 1)
    return _in(value, 0.5, 60)


def _age(number, unit):
    unit = (unit or "year").lower().rstrip("s")
    unit = {"mo": "month", "yr": "year", "wk": "week"}.get(unit, unit)
    days = float(number) * DAYS.get(unit, DAYS.get(unit[:1], 365.25))
    return _in(days, 0, 120 * 365.25)


def _said_number(said):
    """A count written in digits or in words ("20", "twenty", "half an"); None for words we do not know."""
    return float(said) if said.isdigit() else WORD_NUMBERS.get(said.lower())


def _hours(amount, unit):
    count = _said_number(amount)
    if count is None:
        return None
    return float(count) / 60 if unit.lower().startswith("m") else float(count)


def measure(text):
    """Every measurement in `text`, in order of position; overlapping readings of one span keep the first."""
    found, taken = [], []
    for kind, pattern, value_of in COMPILED:
        for match in pattern.finditer(text):
            if any(match.start() < end and start < match.end() for start, end, taken_kind in taken
                   if taken_kind == kind or kind in _OVERLAP_BLOCKED.get(taken_kind, ())):
                continue
            value = value_of(match)
            if value is None:
                continue
            taken.append((match.start(), match.end(), kind))
            found.extend(_readings(kind, value, match))
    return sorted(found, key=lambda m: m.start)


# "It's 31 degrees today", "the flat's 34 degrees", "ambient 30C", "room temperature 31": the weather or a room,
# not the patient. Read as a body temperature, a hot day was hypothermia (below 35 C: level 1, below 30: level 0).
_AMBIENT_AFTER = re.compile(r"^\s*(?:c\b|celsius\b|f\b)?\s*(?:outside|out\b|today|all (?:day|week)|"
                            r"(?:for|over) (?:days|a week|the last|three|two|four)|this (?:week|summer|afternoon|morning)|"
                            r"in the (?:shade|sun|sunshine|flat|house|room|car|lounge|tent|kitchen|office|bedroom|garden|"
                            r"heat)|in here|ambient|(?:and|with) (?:no shade|sunny|humid|blazing)|heat\b|heatwave|"
                            r"on the (?:dance floor|beach|course|site))", re.I)
_AMBIENT_BEFORE = re.compile(r"(?:\b(?:ambient|room|outside|weather|forecast|heat ?wave|the sun|shade|air con\w*|"
                             r"(?:flat|house|room|car|lounge|kitchen|office|tent|bedroom|ward|classroom|gym)(?:s|'s| is| was|"
                             r" has been| had been| were| are)|been|it'?s been)\W+(?:\w+\W+){0,2}|\bin (?:about |around |over )?)$",
                             re.I)
_IT_IS_BEFORE = re.compile(r"\b(?:it'?s|it is|it was|its)\s+(?:about |around |nearly |over |like |easily )?$", re.I)
_BODY_WORDS = re.compile(r"\b(?:temp\w*|thermometer|fever\w*|febrile|tympanic|forehead|ear|oral|armpit|reading|reads|"
                         r"measured|checked|took|core)\b", re.I)


_BODY_AFTER = re.compile(r"^\s*(?:c\b|f\b)?\s*(?:on|by|with|in|under) (?:the|his|her|my|our|their) (?:\w+ )?"
                         r"(?:thermometer|forehead|ear|armpit|arm|mouth)", re.I)
_NAMED_FOR = re.compile(r"\b(?:room|ambient|outside|outdoor|air|water|sea|pool|bath|weather|car|oven|fridge|freezer)\s*$",
                        re.I)


def _words_before(match):
    """Up to 40 characters before the match, within its sentence."""
    text, start = match.string, match.start()
    sentence_start = max(text.rfind(mark, 0, start) for mark in ".!?\n") + 1
    return text[max(sentence_start, start - 40):start], text[sentence_start:start]


def _named_for_the_air(match):
    """"Room temp 31", "water temperature 12": a reading named as a temperature or fever is the patient's unless a
    room, the air or water owns it."""
    return bool(_NAMED_FOR.search(_words_before(match)[0]))


def _the_airs(match):
    """Whether a bare number of degrees ("it's 31 degrees outside", "the flat's 35 degrees") is the air's or a
    room's, by the words around it."""
    text, end = match.string, match.end()
    before, sentence_before = _words_before(match)
    if _AMBIENT_AFTER.match(text[end:end + 30]) or _AMBIENT_BEFORE.search(before):
        return True
    return bool(_IT_IS_BEFORE.search(before)) and not _BODY_WORDS.search(sentence_before) \
        and not _BODY_AFTER.match(text[end:end + 40])


# A span read as one kind is not read again as another it cannot also be ("BP 80/40" is not a pulse).
_OVERLAP_BLOCKED = {"blood_pressure": ("heart_rate", "systolic_bp", "pain_score"),
                    "spo2": ("heart_rate", "resp_rate", "temperature"),
                    "resp_rate": ("heart_rate",), "gestation_weeks": ("age_days",),
                    "glucose": ("temperature",), "heart_rate": ("temperature",), "gcs": ("pain_score", "age_days"),
                    "temperature": ("age_days",), "pain_score": ("age_days", "ingested_units")}


def _readings(kind, value, match):
    text, start, end = match.group(0).strip(), match.start(), match.end()
    if kind == "blood_pressure":
        systolic, diastolic = value
        if not (40 <= systolic <= 300 and 20 <= diastolic <= 200 and systolic > diastolic):
            return []
        return [Measurement("systolic_bp", systolic, start, end, text),
                Measurement("diastolic_bp", diastolic, start, end, text)]
    return [Measurement(kind, float(value), start, end, text)]


def first(measurements, kind):
    return next((m for m in measurements if m.kind == kind), None)
