"""The ESI decision points, each returning the level it supports and the evidence in the text.

- A, immediate life-saving intervention (level 0): a finding of point A.
- B, high risk, new confusion or lethargy, severe pain or distress (level 1): a finding of point B, or a
  high-risk situation read from numbers (fever in a baby under 3 months, an unwell newborn, pre-eclampsia
  blood pressure from 20 weeks, a significant ingestion however well the person says they feel, a small child
  who swallowed someone's medicine).
- D, danger-zone vital signs by age (level 1, or 0 for values that need an intervention now).
- C, the resources needed (levels 2-4), is the learned model's (`head.py`); the classifier adds it.

The level of a request is the most urgent any point supports (`most_urgent`); the red-flag rules still
only raise it. Thresholds are data: data/classifier/danger_zone.toml.
"""
import re
import tomllib
from dataclasses import asdict, dataclass

from . import DATA_DIR, context, measurements

DANGER_ZONE_PATH = DATA_DIR / "danger_zone.toml"
POINT_NAMES = {"A": "life-saving intervention", "B": "high-risk situation", "D": "danger-zone vital sign",
               "C": "resources needed", "R": "red-flag rule"}
_NEONATE_DAYS = 28
# "Took 30 paracetamol last night, feel totally fine now": feeling fine does not undo an ingestion.
_NOT_UNDONE = {"ingested_units": {"RESOLVED"}}
INGESTION_FINDING = "significant_ingestion"  # an ingestion read from numbers names this finding, for its card
_FEVER_WORDS = re.compile(r"\b(fever\w*|feverish|temperature|temp|hot|burning up|pyrexi\w*|febrile)\b", re.I)
# A child's mouth on someone's medicine: "chewed some of nan's gliclazide", "ate my iron tablets", "got into
# the pill organiser", "5 of her amlodipine are missing". A child's own syrup, vitamins, sweets or a laundry
# capsule are not.
_CHILD_INGESTION = re.compile(
    r"\b(swallow\w*|ate|eaten|eat|eats|chew\w*|got into|got hold of|sucked|bit into|had some of|found with|"
    r"into (?:his|her) mouth)\b[^.?!]{0,60}?\b(tablets?|pills?|capsules?|medicines?|medication|meds|blister|"
    r"pill (?:organi[sz]er|box)|dosette|" + measurements.OVERDOSED + r")\b|"
    r"\b(tablets?|pills?|capsules?)\b[^.?!]{0,30}\b(missing|gone)\b", re.I)
_NOT_MEDICINE = re.compile(r"\b(calpol|vitamins?|gumm(y|ies)|sweets?|(?:his|her) own|contracepti\w*|the pill|laundry|"
                           r"dishwasher|washing|detergent|cleaning)\b", re.I)
_NEONATE_UNWELL = re.compile(r"\b(fever\w*|hot|temperature|floppy|limp|not feeding|won'?t feed|off (?:her|his) "
                             r"feeds?|sleepy|drowsy|lethargic|grunting|blue|pale|mottled|vomit\w* green|"
                             r"breathing|not waking|hard to wake|fits?|seizure|jerking)\b", re.I)


@dataclass(frozen=True)
class Support:
    point: str
    level: int
    reason: str
    evidence: str
    source: str = ""  # the finding id or red-flag rule name behind it: protocol cards are chosen by it

    def sentence(self):
        return f"Decision point {self.point} ({POINT_NAMES[self.point]}): {self.reason} \u2014 \u201c{self.evidence}\u201d."

    def as_dict(self):
        return asdict(self)


def load_danger_zone(path=DANGER_ZONE_PATH):
    return tomllib.loads(path.read_text(encoding="utf-8"))


DANGER_ZONE = load_danger_zone()


def _strong(matches):
    return [m for m in matches if m.finding.decides(m.score)]


def point_a(matches):
    return [Support("A", 0, m.finding.label, m.evidence, m.finding.id) for m in _strong(matches) if m.finding.point == "A"]


def point_b(text, matches, readings):
    supports = [Support("B", 1, m.finding.label, m.evidence, m.finding.id) for m in _strong(matches) if m.finding.point == "B"]
    age = _age_days(readings)
    if age is not None and age < DANGER_ZONE["fever_infant_max_days"]:
        fever = next((r for r in readings if r.kind == "temperature" and r.value >= DANGER_ZONE["fever_c"]), None)
        words = _FEVER_WORDS.search(text)
        if fever is not None or (words and not _discounted(text, words.span())):
            evidence = fever.text if fever is not None else words.group(0)
            supports.append(Support("B", 1, f"fever in a baby {age:.0f} days old", evidence))
    if age is not None and age < _NEONATE_DAYS:
        unwell = _NEONATE_UNWELL.search(text)
        if unwell and not _discounted(text, unwell.span()):
            supports.append(Support("B", 1, f"an unwell newborn ({age:.0f} days)", unwell.group(0)))
    weeks = measurements.first(readings, "gestation_weeks")
    if weeks is not None and weeks.value >= DANGER_ZONE["any_age"]["preeclampsia_from_week"]:
        systolic = measurements.first(readings, "systolic_bp")
        diastolic = measurements.first(readings, "diastolic_bp")
        if (systolic and systolic.value >= DANGER_ZONE["any_age"]["preeclampsia_systolic"]) or (
                diastolic and diastolic.value >= DANGER_ZONE["any_age"]["preeclampsia_diastolic"]):
            supports.append(Support("B", 1, f"raised blood pressure at {weeks.value:g} weeks of pregnancy",
                                    (systolic or diastolic).text))
    ingestion = _CHILD_INGESTION.search(text)
    if (age is not None and age < DANGER_ZONE["any_age"]["child_ingestion_max_days"] and ingestion
            and not _NOT_MEDICINE.search(ingestion.group(0)) and not _discounted(text, ingestion.span())):
        supports.append(Support("B", 1, "a small child who swallowed someone's medicine", ingestion.group(0),
                                INGESTION_FINDING))
    ingested = measurements.first(readings, "ingested_units")
    if ingested is not None and ingested.value >= DANGER_ZONE["any_age"]["significant_ingested_units"]:
        supports.append(Support("B", 1, "a significant ingestion, however well the person seems", ingested.text,
                                INGESTION_FINDING))
    return supports


def point_d(readings):
    age = _age_days(readings)
    bands = DANGER_ZONE["band"]
    band = next((band for band in bands if age is not None and age < band["max_age_days"]), bands[-1])
    limits = {**DANGER_ZONE["any_age"], "heart_rate": band["heart_rate"], "resp_rate": band["resp_rate"]}
    supports = []
    for reading in readings:
        zone = limits.get(reading.kind)
        if not isinstance(zone, dict):
            continue
        for level in (0, 1):
            low, high = zone[f"level{level}"]
            if reading.value < low or reading.value > high:
                where = "" if reading.kind in DANGER_ZONE["any_age"] else f" for {band['name']}"
                supports.append(Support("D", level, f"{reading.kind.replace('_', ' ')} {reading.value:g}{where}",
                                        reading.text))
                break
    return supports


def danger_readings(text):
    """The text's measurements whose context does not discount them (not historical, negated, hypothetical)."""
    readings = measurements.measure(text)
    if not readings:
        return []
    judged = context.judge(text, [(r.start, r.end) for r in readings], within_clause=True)
    return [r for r, categories in zip(readings, judged) if not categories - _NOT_UNDONE.get(r.kind, set())]


def supports_for(text, matches, readings=None):
    """Every support from points A, B and D for one text."""
    readings = danger_readings(text) if readings is None else readings
    return point_a(matches) + point_b(text, matches, readings) + point_d(readings)


def most_urgent(supports):
    return min((s.level for s in supports), default=None)


def _age_days(readings):
    ages = [r.value for r in readings if r.kind == "age_days"]
    return min(ages) if ages else None


def _discounted(text, span):
    return bool(context.judge(text, [span])[0])


_RULE_REASON = re.compile(r"^(.*) \(\u201c(.*)\u201d\)$")


def from_rules(found):
    """The red-flag rules' findings as supports: a level-0 rule is point A, a level-1 rule point B."""
    from .rules import RULES

    levels = {rule.name: rule.level for rule in RULES}
    supports = []
    for name, reason in zip(found.fired, found.reasons) if found is not None else []:
        parsed = _RULE_REASON.match(reason)
        label, evidence = parsed.groups() if parsed else (reason, "")
        level = levels.get(name, 1)
        supports.append(Support("A" if level == 0 else "B", level, f"{label} (red-flag rule)", evidence, name))
    return supports


def assess_batch(texts, rule_results, encode=None, encoder_name=None):
    """(supports per text from points A, B and D and the red-flag rules, clause features per text for the
    head: `findings.match_batch`). Without an encoder (the fallback), supports come only from the rules
    and the numbers, and there are no clause features."""
    from . import findings

    if encode is None:
        matches, clause_features = [[] for _ in texts], None
    else:
        matches, clause_features = findings.match_batch(texts, encode, encoder_name)
    supports = [supports_for(text, found) + from_rules(rules_found)
                for text, found, rules_found in zip(texts, matches, rule_results)]
    return supports, clause_features
