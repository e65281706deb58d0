"""Which protocol cards a classified request gets: from its findings, red-flag rules, words and meaning.

A specific card is chosen when the classifier's decision points name one of its trigger findings or rules,
when one of its trigger words appears, or when a clause of the call means one of its trigger phrases
(sentence embeddings, the clause's single nearest card, not negated or resolved by ConText), or when the
learned head (card_head), reading the whole call, gives it card_head.THRESHOLD or more; the head also
overrules a one-clause trigger for a card it all but rules out, never a red-flag rule's. It must suit
the patient's age and the request's level, and no measured reading may rule it out (a fever rules out
hypothermia); at most MAX_CARDS are shown (MAX_CARDS_URGENT at levels 0-1),
strongest first. A request that no specific card fits gets its level's fallback card, and a level 0-1
request always gets one that says "send help now"."""
import logging
import re

import numpy as np

from triage_site.classification import context, decision_points, findings, measurements, reading, rules
from triage_site.classification.encoder import PerEncoder

from . import card_head
from .clauses import clause_vectors_batch
from .cards import FALLBACKS, Card, check_references, load_cards

logger = logging.getLogger(__name__)
# At most this many specific cards, strongest first: a dispatcher reads them aloud. A life threat (levels 0-1)
# may need three at once (a crash: the trauma, the bleeding and the scene), and a missed protocol costs more
# there than an extra card; chosen out of fold and on data/guidance/dev (docs/guidance.md).
MAX_CARDS = 2
MAX_CARDS_URGENT = 3
# A clause means a card when its nearest trigger phrase is this close (cosine) and this much closer than any
# other card's: the margin matters more than the level. Both chosen on data/guidance/dev only (docs/guidance.md).
PHRASE_THRESHOLD = 0.4
PHRASE_MARGIN = 0.12
EXACT = 1.0  # the strength of a finding, rule or word trigger
INFANT_DAYS = 365
CHILD_DAYS = 12 * 365
# A baby who is not the patient: sweets, things for a baby, and a baby still in the womb moving or kicking.
_OTHER_BABIES = re.compile(r"\bjelly bab(y|ies)\b|\bbaby (wipes|monitor|oil|powder|food|bottle|shower|gate|seat|teeth|"
                           r"tooth|aspirin)\b|\bbab(y|ies)(?:'s|\u2019s|s| is| has)?\s+(?:still\s+|been\s+)?"
                           r"(?:moving|moved|kicking|kicked|movements?)\b", re.I)
# "INF 3/12" and "inf 10/12" in clinical shorthand name an infant ("inf" alone may be "inferior").
_INFANT_WORDS = re.compile(r"\b(bab(y|ies)|infant|newborn|new born|neonate|inf\.? ?\d{1,2}/(12|52))\b", re.I)
# A primary-school year (1-6, ages 5 to 11) or a junior team ("the under-10s") names a child.
_CHILD_WORDS = re.compile(r"\b(child|kid|toddler|little (boy|girl|one|lad|lass)|preschooler|schoolboy|schoolgirl|"
                          r"year ?[1-6] (boy|girl|pupil|child)|(boy|girl|pupil|child|kid|lad|lass) in year ?[1-6]|"
                          r"under[- ]?([5-9]|1[0-2])s)\b", re.I)

NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
                "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen")
_NUMBER_WORDS = re.compile(r"\b(" + "|".join(NUMBER_WORDS) + r")\b", re.I)
TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
# "forty-one", "seventy two", "eighty": an adult's age said in words
_TENS_WORDS = re.compile(r"\b(" + "|".join(TENS) + r")(?:[- ](" + "|".join(NUMBER_WORDS[:9]) + r"))?\b", re.I)
# "he's 5", "my daughter is 7", "she is 13 months": a number after "he's" is an age, in years unless a unit says
# otherwise; other units ("he's 40 minutes", "she's 38 degrees") are not ages.
_AGE_UNIT = r"(?>(?:\s*(days?|weeks?|wks?|months?|mos?|years?|yrs?)\b)?)"  # atomic: a unit is never skipped
# "she's about 10 or 11 months": a range is read as its first number, with the unit after it
_AGE_NUMBER = r"(\d{1,2})(?:\s*(?:or|to|-)\s*\d{1,2})?"
_NOT_AN_AGE = (r"(?!\s*(?:%|minutes?|mins?|hours?|hrs?|times?|degrees?|stone|kg|lbs?|feet|ft|metres?|m\b|:|\.\d|"
               r"in\b|into\b|along\b|pregnant|ago\b))")
_SAID_AGE = re.compile(r"\b(?:(?:he|she|son|daughter|boy|girl|child|kid|brother|sister|grandson|granddaughter)"
                       r"(?:'s|\u2019s| is)|hes|shes)\s+(?:(?:only|just|about|around|nearly|almost)\s+)?"
                       + _AGE_NUMBER + r"\b" + _AGE_UNIT + _NOT_AN_AGE, re.I)
# A transcript's answer: "How old is she?" then "Caller: Three." or "A: about 4 months".
_ASKED_AGE = re.compile(r"\bhow old\b[^?\n]*\?\s*(?:\w+:\s*)?(?:(?:she|he)(?:'s|\u2019s| is)\s+|about\s+|around\s+)?"
                        + _AGE_NUMBER + r"\b" + _AGE_UNIT + _NOT_AN_AGE, re.I)
# "a boy of about eight", "her daughter, 7,", "my brother 9", "the boy I look after is seven", "M 4y": a number
# joined to a child's noun by nothing, a comma or a word that introduces an age ("my son took 8 tablets" is not).
_NOUN_AGE = re.compile(r"\b(?:boy|girl|lad|lass|son|daughter|brother|sister|child|kid|grandson|granddaughter|nephew|"
                       r"niece)\b(?:[^.?!\d\n]{0,20}?(?:\bof|\bis|\baged?|\babout|\baround|\bapprox\w*|\broughly|,)"
                       r"|\s)\s*(?:about\s+|around\s+|approx\w*\s+|roughly\s+)?" + _AGE_NUMBER + r"\b"
                       + _AGE_UNIT + _NOT_AN_AGE, re.I)
# The caller's own age: "I'm 64", "im only 15". Weeks and months after "I'm" are a pregnancy, never an age.
_SELF_AGE = re.compile(r"\b(?:i'm|i\u2019m|im|i am)\s+(?:(?:only|just|nearly|almost|about)\s+)?(\d{1,2})()"
                       r"(?:\s*(?:years?|yrs?)(?:\s*old)?)?(?=\s*(?:[,.;:!?)]|$|and\b|but\b|with\b|so\b|now\b))", re.I)
_SHORT_AGE = re.compile(r"\b(\d{1,2}) ?y()\b(?!\s*ago)", re.I)  # clinical shorthand: "M 4y", "approx 3y"
_UNIT_DAYS = {"d": 1.0, "w": 7.0, "m": 30.4, "y": 365.0}
# "She's 38 weeks" or "she is 7 months" in a pregnancy is the pregnancy's length, not her age.
_PREGNANCY = re.compile(r"\b(pregnan\w*|expecting|gestation|labou?r|contractions?|waters|midwife)\b", re.I)

CARDS = load_cards()
ORDER = {card_id: number for number, card_id in enumerate(CARDS)}  # ties: the more urgent card, then file order
# Cards for older patients whose version for babies is another card: the same cards superseded, for infants.
_HAS_INFANT_VERSION = {card.id for card in CARDS.values() if "infant" not in card.ages and card.supersedes
                       and any(other.ages == ("infant",) and other.supersedes == card.supersedes
                               for other in CARDS.values())}
check_references(CARDS, {finding.id for finding in findings.FINDINGS}, {rule.name for rule in rules.RULES})
# Per card, its trigger findings that can be contradicted in words (see `contradicted`).
GUARDS = {card.id: [finding for finding in findings.FINDINGS
                    if finding.id in card.triggers.findings and finding.contradicted_by is not None]
          for card in CARDS.values()}


def _encoded_phrases(encode):
    """(every card's trigger phrases encoded, the ids of the cards with phrases, each card's first row)."""
    phrased = [card for card in CARDS.values() if card.triggers.phrases]
    phrases = [phrase for card in phrased for phrase in card.triggers.phrases]
    starts = np.cumsum([0] + [len(card.triggers.phrases) for card in phrased[:-1]])
    return np.asarray(encode(phrases)), [card.id for card in phrased], starts


PHRASES = PerEncoder(_encoded_phrases)


def _digits(text):
    """Number words as digits ("six weeks old" as "6 weeks old", "forty-one" as "41"), so that ages said in
    words are read."""
    text = _TENS_WORDS.sub(lambda m: str(10 * (TENS.index(m.group(1).lower()) + 2)
                                         + (NUMBER_WORDS.index(m.group(2).lower()) + 1 if m.group(2) else 0)), text)
    return _NUMBER_WORDS.sub(lambda m: str(NUMBER_WORDS.index(m.group(0).lower()) + 1), text)


def age_group(text):
    """"infant", "child" or "adult": from a stated age when there is one, else from words; adult by default."""
    return age_reading(text)[0]


def age_reading(text):
    """(age group, whether an age was stated): an age said in numbers, or only guessed from words."""
    numbered = _digits(text)  # the words are read in the text as said ("my little one" is not "my little 1")
    ages = [reading.value for reading in measurements.measure(numbered) if reading.kind == "age_days"]
    said = next((m for pattern in (_SAID_AGE, _ASKED_AGE, _NOUN_AGE, _SELF_AGE, _SHORT_AGE)
                 for m in [pattern.search(numbered)] if m), None)
    unit = (said.group(2) or "y")[0].lower() if said else None
    if said and not (unit in "wm" and _PREGNANCY.search(text)):
        ages.append(int(said.group(1)) * _UNIT_DAYS[unit])
    if ages:
        return ("infant" if ages[0] < INFANT_DAYS else "child" if ages[0] < CHILD_DAYS else "adult"), True
    if _INFANT_WORDS.search(_OTHER_BABIES.sub(" ", text)):
        return "infant", False
    return ("child" if _CHILD_WORDS.search(text) else "adult"), False


def fits_age(card, group, stated):
    """A card is for the patient's age group. A word for a baby with no age said shows that a baby is in the
    call, not that the baby is the patient ("I had my baby three weeks ago and I can't go on"): it hides only
    a card that has a version for babies (CPR), so that the baby's version is the one shown."""
    if group in card.ages:
        return True
    return group == "infant" and not stated and card.id not in _HAS_INFANT_VERSION


def suits_level(card, level):
    """A card fits its own levels and any more urgent one; a send-help-now card also fits level 1, so a
    life-threat card is never lost to a level-1 verdict."""
    most_lenient = max(card.levels)
    if card.send_help_now:
        most_lenient = max(most_lenient, 1)
    return level <= most_lenient


def exact_triggers(text, sources):
    """{card id: strength} from the decision points' sources (finding ids, rule names) and from trigger words
    that ConText does not discount ("no choking" is not choking)."""
    found, worded = {}, []
    lowered = text.lower()
    for card in CARDS.values():
        if {*card.triggers.findings, *card.triggers.all_rules} & sources:
            found[card.id] = EXACT
            continue
        match = next((m for word in card.triggers.words
                      for m in re.finditer(rf"\b{re.escape(word)}\b", lowered)), None)
        if match is not None:
            worded.append((card.id, match.span()))
    if worded:
        judged = context.judge(text, [span for _, span in worded])
        found.update({card_id: EXACT for (card_id, _), categories in zip(worded, judged) if not categories})
    return found


def phrase_triggers_batch(texts, clauses, encode, encoder_name):
    """{card id: best similarity} per text. A clause triggers the card it means most (its best phrase at
    PHRASE_THRESHOLD or above, by PHRASE_MARGIN over any other card), unless ConText discounts the clause
    (negated, resolved, hypothetical or about someone else). `clauses`: clause_vectors_batch(texts)."""
    phrase_vectors, card_ids, starts = PHRASES.get(encode, encoder_name)
    results = []
    for text, (text_spans, vectors) in zip(texts, clauses):
        by_card = np.maximum.reduceat(vectors @ phrase_vectors.T, starts, axis=1)
        best = {}
        for span, scores in zip(text_spans, by_card):
            ranked = np.argsort(scores)[::-1]
            top, margin = float(scores[ranked[0]]), float(scores[ranked[0]] - scores[ranked[1]])
            card_id = card_ids[ranked[0]]
            if contradicted(card_id, text, span):
                continue
            if top >= PHRASE_THRESHOLD and margin >= PHRASE_MARGIN and top > best.get(card_id, (0.0, None))[0]:
                best[card_id] = (top, span)
        kept = list(best.items())
        judged = context.judge(text, [span for _, (_, span) in kept]) if kept else []
        results.append({card_id: score for (card_id, (score, _)), categories in zip(kept, judged) if not categories})
    return results


def contradicted(card_id, text, span):
    """Whether the clause text[span] says the opposite of one of the card's trigger findings in so many words
    ("he's breathing normally" for a CPR card): phrases are matched by the same polarity-blind encoder, so the
    finding's own guard (findings.toml: contradicted_by, unless) applies to them too."""
    start, end = span
    return any(finding.contradicted(text[start:end], findings.asked(text, start, end))
               for finding in GUARDS.get(card_id, ()))


# Doubt in a clause that says the person breathes ("I think he's breathing", "can't tell if she's breathing"):
# not an answer a CPR card may be dropped on.
_DOUBT = re.compile(r"\b(think|thinks|thought|maybe|might|perhaps|sure|unsure|know|tell|seems?|looks?|guess|"
                    r"probably|possibly|if|whether|kind of|sort of|kinda|sorta)\b", re.I)
# Per guarded finding, words that anywhere in the call keep it standing whatever a clause says: agonal gasps,
# noises or a blue or grey colour mean the breathing is not normal, so the CPR card stays.
_UNLESS_IN_CALL = {"not_breathing": re.compile(r"\b(gasp\w*|agonal|snor\w*|gurgl\w*|rattl\w*|blue|gr[ae]y|purple|"
                                               r"dusky)\b", re.I)}


def said_otherwise(card_id, text):
    """Whether the call says, in so many words and without doubt, the opposite of every guarded trigger finding
    of the card ("unresponsive but breathing normally", and nowhere "not breathing", "gasping" or a question):
    a CPR card is for someone not breathing normally, and such a call needs the recovery position instead."""
    guards = GUARDS.get(card_id)
    return bool(guards) and all(_call_contradicts(finding, text) for finding in guards)


def _call_contradicts(finding, text):
    """Some clause contradicts the finding (Finding.contradicted) and every other clause that speaks of it
    does too, without doubt."""
    in_call = _UNLESS_IN_CALL.get(finding.id)
    if in_call is not None and in_call.search(finding.denied.sub(" ", text) if finding.denied else text):
        return False  # ("he isn't gasping" is no gasp)
    said = False
    for start, end in findings.segments(text) or [(0, len(text))]:
        clause = text[start:end]
        if findings.asked(text, start, end) or not finding.contradicted_by.search(clause):
            continue  # not an answer about the finding
        if not finding.contradicted(clause) or _DOUBT.search(clause):
            return False
        said = True
    return said


# Cards that a measured reading rules out: shivering with a temperature of 39.6 is an infection's rigors, not a
# cold body. The line is the danger zones' fever (data/classifier/danger_zone.toml); a discounted reading
# (historical, negated, hypothetical) does not count.
_RULED_OUT_BY_FEVER = {"hypothermia"}


def measured_otherwise(card_id, text):
    """Whether the call measures a fever, which rules out a card for a cold body."""
    if card_id not in _RULED_OUT_BY_FEVER:
        return False
    fever = decision_points.DANGER_ZONE["fever_c"]
    return any(r.kind == "temperature" and r.value >= fever for r in decision_points.danger_readings(text))


def head_probabilities_batch(texts, clause_vectors, encoder_name):
    """{card id: probability} per text, for every card the learned head knows; None per text when its artefact
    cannot load. `clause_vectors`: each text's clause embeddings."""
    head = card_head.HEAD.get(encoder_name)
    if head is None:
        return [None for _ in texts]
    return head.probabilities(texts, clause_vectors)


def learned_triggers(probabilities, threshold=None):
    """The cards the head gives card_head.THRESHOLD or more, with that strength."""
    threshold = card_head.THRESHOLD if threshold is None else threshold
    return {card_id: round(p, 3) for card_id, p in (probabilities or {}).items() if p >= threshold and card_id in CARDS}


def rule_cards(sources):
    """The cards a red-flag rule cited by the decision points names (not its overrulable_rules): the head
    cannot overrule them."""
    return {card.id for card in CARDS.values() if set(card.triggers.rules) & set(sources)}


def overruled(strengths, probabilities, kept, veto_below=None):
    """`strengths` without the cards the head, reading the whole call, gives less than card_head.VETO_BELOW: a
    phrase, word or finding sees one clause, the head sees them all. A card a red-flag rule names (`kept`) stays:
    the rules are hand-written and precise. Nothing is overruled without the head."""
    veto_below = card_head.VETO_BELOW if veto_below is None else veto_below
    if probabilities is None or not veto_below:
        return strengths
    return {card_id: strength for card_id, strength in strengths.items()
            if card_id in kept or probabilities.get(card_id, 1.0) >= veto_below}


def choose(text, level, strengths):
    """The cards shown for one request, strongest first, with the fallbacks applied."""
    group, stated = age_reading(text)
    candidates = [(strength, card_id) for card_id, strength in strengths.items()
                  if card_id not in FALLBACKS.values() and fits_age(CARDS[card_id], group, stated)
                  and suits_level(CARDS[card_id], level) and not said_otherwise(card_id, text)
                  and not measured_otherwise(card_id, text)]
    superseded = {other for _, card_id in candidates for other in CARDS[card_id].supersedes}
    ranked = sorted((pair for pair in candidates if pair[1] not in superseded),
                    key=lambda pair: (-pair[0], min(CARDS[pair[1]].levels), ORDER[pair[1]]))
    chosen = [CARDS[card_id] for _, card_id in ranked[:MAX_CARDS_URGENT if level <= 1 else MAX_CARDS]]
    if level <= 1 and not any(card.send_help_now for card in chosen):
        chosen.append(CARDS[FALLBACKS[level]])
    elif not chosen:
        chosen.append(CARDS[FALLBACKS[level]])
    return chosen


def triggers_batch(texts, sources, encode=None, encoder_name=None):
    """{card id: strength} per text, before age and level are applied. `sources`: per text, the finding ids
    and rule names its decision points cite. Without an encoder (the rules-only fallback) neither phrases
    nor the learned head are used; words, findings and rules are."""
    texts = list(texts)
    if encode is None or not texts:
        return [exact_triggers(text, set(cited)) for text, cited in zip(texts, sources)]
    clauses = clause_vectors_batch(texts, encode)
    by_phrase = phrase_triggers_batch(texts, clauses, encode, encoder_name)
    probabilities = head_probabilities_batch(texts, [vectors for _, vectors in clauses], encoder_name)
    return [combined(phrased, exact_triggers(text, set(cited)), probs, rule_cards(cited))
            for text, cited, phrased, probs in zip(texts, sources, by_phrase, probabilities)]


def combined(phrased, exact, probabilities, kept, threshold=None, veto_below=None):
    """One call's card strengths: the strongest of its phrase, learned and exact triggers, less what the head
    overrules. The thresholds default to card_head's; the benchmarks that chose them pass others."""
    return overruled(_strongest(phrased, learned_triggers(probabilities, threshold), exact), probabilities, kept,
                     veto_below)


def _strongest(*found):
    """Each card's strongest trigger among several {card id: strength}."""
    merged = {}
    for strengths in found:
        for card_id, strength in strengths.items():
            merged[card_id] = max(strength, merged.get(card_id, 0.0))
    return merged


def select_batch(texts, levels, sources, encode=None, encoder_name=None):
    """(cards, trigger strengths) for each request; the strengths are stored so that a change of urgency can
    choose again without the encoder."""
    strengths = triggers_batch(texts, sources, encode, encoder_name)
    return [(choose(text, level, found), found) for text, level, found in zip(texts, levels, strengths)]


def rechoose(text, level, detail):
    """The cards for a request whose urgency a person changed, from the trigger strengths stored at
    classification: a request raised to level 0 must not keep a self-care card."""
    stored = detail.get("card_triggers") if isinstance(detail, dict) else None
    strengths = {card_id: float(value) for card_id, value in (stored or {}).items()
                 if card_id in CARDS and isinstance(value, (int, float))}
    return choose(reading.readable(text), level, strengths)


def sources_of(detail):
    """The finding ids and rule names a classification's decision points cite (stored in its detail)."""
    detail = detail if isinstance(detail, dict) else {}
    cited = {point.get("source") for point in detail.get("decision_points", []) if isinstance(point, dict)}
    cited |= set(detail.get("rules_fired") or [])
    return {source for source in cited if source}


def _encoder():
    """The classifier's encoder as (encode, name), or (None, None) when it is not loaded."""
    from triage_site.classification import classifier, encoder

    try:
        _, encoder_name = classifier.MODEL.get()
    except classifier.ModelUnavailable:
        return None, None
    return encoder.encode_with(encoder_name), encoder_name


def select_for_classifications(texts, classifications):
    """The cards for each classified request. A failing encoder costs the phrase matches, never the cards:
    findings, rules, words and the fallbacks still choose them."""
    texts = [reading.readable(text) for text in texts]
    levels = [result.urgency for result in classifications]
    sources = [sources_of(result.detail) for result in classifications]
    encode, encoder_name = _encoder()
    try:
        return select_batch(texts, levels, sources, encode, encoder_name)
    except Exception:  # noqa: BLE001 - cards must never stop a request being queued
        logger.exception("phrase matching for protocol cards failed; choosing without it")
        return select_batch(texts, levels, sources)


def cards_most_urgent_first():
    """The library, send-help-now cards of the most urgent levels first."""
    return sorted(CARDS.values(), key=lambda card: (min(card.levels), not card.send_help_now, card.id))


def shown_cards(references, texts=()):
    """The cards a request stored references to, in the words it was shown (`texts`, MedicalRequest.card_texts),
    even if the library has moved on since. Without a readable stored text (requests stored before texts were)
    the library's current card stands in, and a card since removed from it is skipped."""
    stored = _by_version(texts)
    shown = []
    for reference in references if isinstance(references, list) else []:
        if not isinstance(reference, dict):
            continue
        text = stored.get((reference.get("id"), reference.get("version")))
        try:
            shown.append(Card.from_stored(reference, text) if text is not None else CARDS[reference["id"]])
        except (KeyError, TypeError, ValueError):
            if reference.get("id") in CARDS:
                shown.append(CARDS[reference["id"]])
    return shown


def texts_kept(earlier, cards):
    """The stored texts of a request's cards: those of `cards` added to the `earlier` ones (one per card
    version), so that the cards shown before an urgency change keep their words too."""
    kept = _by_version(earlier)
    for card in cards:
        kept.setdefault((card.id, card.version), card.text())
    return list(kept.values())


def _by_version(texts):
    """{(card id, version): stored text} of a request's stored card texts (anything unreadable left out)."""
    return {(text.get("id"), text.get("version")): text for text in texts if isinstance(text, dict)} \
        if isinstance(texts, list) else {}
