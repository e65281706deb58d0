"""Red-flag safety rules. They can only make a request more urgent, never less.

`red_flags(text)` returns a `RuleResult` with the most urgent level any rule forces (0 or 1)
and a human-readable reason, or level None when nothing fired.

Matching is on a normalised text (lower case, apostrophes dropped, common misspellings
folded). A finding is ignored when it is negated within its own clause ("no chest pain",
"not unresponsive, talking now", "denies suicidal thoughts"); a clause ends at . , ; : ! ?
"but" and "however". Loss-of-consciousness findings are also ignored when the text says the
person has come round ("awake and talking", "came round", "fine now"), and every finding is ignored when
earlier in its sentence the caller asks about a hypothetical ("what would I do if he ever stopped
breathing", "just in case"): a first-aid question is not an emergency. A finding said of months or years ago
("an overdose last year", "history of stroke") is ignored too, and so is one that the text, after it, says has
cleared (`cleared_by`: "choked on a grape, it flew out with back blows").
A rule with `then` fires only when its pattern is followed, within `within` characters, by a `then` finding
that is itself not negated: "20 weeks pregnant, no bleeding, no pain" is not a pregnancy red flag. A rule
with `near` asks the same of a `near` finding on either side ("oven cleaner in his eye", "eye full of cement").
Patterns that already contain a negation ("not breathing", "can't breathe") are red flags
themselves and are not subject to the negation check.

The rules, the folds and the came-round phrases are data, in data/classifier/red_flags.toml; a malformed
rule stops the import with the rule's name and the reason.
"""
import re
import tomllib
from dataclasses import dataclass, field
from typing import NamedTuple

from . import DATA_DIR, reading

RULES_PATH = DATA_DIR / "red_flags.toml"
_NEGATOR = re.compile(r"\b(no|not|denies|denied|without|never|nor|negative for|free of|none)\b"
                      r"(?! (know|sure|remember|understand)\b)")
# A finding named by its own negation ("will not wake", "not responding", "no response"): a negator a few words
# before it ("no fan, burning hot, won't wake up") is about something else, not a denial of the finding.
_SAID_BY_NEGATION = re.compile(r"\b(no|not|never|cannot|without)\b")
_CLAUSE_BREAK = re.compile(r"[.,;:!?]|\bbut\b|\bhowever\b|\bnow\b")
RED_FLAG_LEVELS = (0, 1)
WITHIN = 80  # characters a rule's `then` finding may follow its pattern, unless the rule says otherwise


@dataclass(frozen=True)
class Rule:
    name: str
    level: int
    pattern: re.Pattern
    reason: str
    negatable: bool = True
    consciousness: bool = False  # suppressed when the text says the person has come round
    requires: re.Pattern | None = None  # a second finding anywhere in the text (risk factors, age)
    then: re.Pattern | None = None  # a finding that must follow the pattern within `within` characters
    near: re.Pattern | None = None  # a finding that must be within `within` characters, before or after
    cleared_by: re.Pattern | None = None  # after the match, says it is over ("coughed it up" for choking)
    within: int = WITHIN


class RulesFileError(ValueError):
    """The red-flag rules file is missing or malformed; the message names the rule and the reason."""


def _pattern(value, where):
    text = "".join(value) if isinstance(value, list) else value
    if not isinstance(text, str) or not text:
        raise RulesFileError(f"{RULES_PATH}: {where}: a pattern must be a string or a list of strings")
    try:
        return re.compile(text)
    except re.error as exc:
        raise RulesFileError(f"{RULES_PATH}: {where}: bad regular expression: {exc}") from exc


def _rule(entry):
    name = entry.get("name") or "?"
    unknown = set(entry) - {"name", "level", "reason", "pattern", "requires", "negatable", "consciousness", "then",
                            "near", "within", "cleared_by"}
    if unknown or entry.get("level") not in RED_FLAG_LEVELS or not entry.get("reason") or "pattern" not in entry:
        raise RulesFileError(f"{RULES_PATH}: rule {name!r} needs a name, a level in {RED_FLAG_LEVELS}, a reason "
                             f"and a pattern" + (f", and has unknown keys {sorted(unknown)}" if unknown else ""))
    requires, then, near, cleared_by = (entry.get(key) for key in ("requires", "then", "near", "cleared_by"))
    within = entry.get("within", WITHIN)
    if not isinstance(within, int) or isinstance(within, bool) or within < 1:
        raise RulesFileError(f"{RULES_PATH}: rule {name!r}: within must be a positive number of characters")
    if then is not None and near is not None:
        raise RulesFileError(f"{RULES_PATH}: rule {name!r}: give `then` or `near`, not both")
    return Rule(name, entry["level"], _pattern(entry["pattern"], f"rule {name!r}"), entry["reason"],
                negatable=bool(entry.get("negatable", True)), consciousness=bool(entry.get("consciousness", False)),
                requires=None if requires is None else _pattern(requires, f"rule {name!r}, requires"),
                then=None if then is None else _pattern(then, f"rule {name!r}, then"),
                near=None if near is None else _pattern(near, f"rule {name!r}, near"), within=within,
                cleared_by=None if cleared_by is None else _pattern(cleared_by, f"rule {name!r}, cleared_by"))


class RulesFile(NamedTuple):
    words: dict  # word folds
    phrases: dict  # phrase folds
    came_round: re.Pattern
    hypothetical: re.Pattern
    past_after: re.Pattern  # "... two years ago": the finding before it is in the past
    past_before: re.Pattern  # "history of ...": the finding after it is
    rules: list


def load_rules(path=RULES_PATH):
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        folds, came_round, hypothetical, past, entries = (data["folds"], data["came_round"], data["hypothetical"],
                                                           data["past"], data["rule"])
        words, phrases = dict(folds["words"]), dict(folds["phrases"])
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise RulesFileError(f"cannot read the red-flag rules {path}: {exc!r}") from exc
    return RulesFile(words, phrases, _pattern(came_round["pattern"], "came_round"),
                     _pattern(hypothetical["pattern"], "hypothetical"), _pattern(past.get("after"), "past, after"),
                     _pattern(past.get("before"), "past, before"), _rules(entries))


def _rules(entries):
    """The rules in file order. `pattern_of` gives a rule an earlier rule's pattern, so that two rules that
    differ only in their conditions keep one list of words."""
    made = []
    for entry in entries:
        if "pattern_of" in entry:
            shared = next((rule for rule in made if rule.name == entry["pattern_of"]), None)
            if shared is None or "pattern" in entry:
                raise RulesFileError(f"{RULES_PATH}: rule {entry.get('name') or '?'!r}: pattern_of must name an "
                                     f"earlier rule, in place of a pattern")
            entry = {key: value for key, value in entry.items() if key != "pattern_of"} | {
                "pattern": shared.pattern.pattern}
        made.append(_rule(entry))
    return made


_FOLD, _PHRASE_FOLD, _CAME_ROUND, _HYPOTHETICAL, _PAST_AFTER, _PAST_BEFORE, RULES = load_rules()
_SENTENCE_BREAK = re.compile(r"[.!?\n]")
# How far before a match `[past] before` is looked for: its cue ("died after", 10 characters) and the 20 it may
# stand from the match, with room to spare (a search from the text's start read the whole text for each match).
PAST_REACH = 40


@dataclass
class RuleResult:
    level: int | None = None
    reasons: list = field(default_factory=list)
    fired: list = field(default_factory=list)

    @property
    def reason(self):
        return "; ".join(self.reasons)

    def as_dict(self):
        """What a request stores, so that its red flags are found once and passed on."""
        return {"level": self.level, "reasons": list(self.reasons), "fired": list(self.fired)}

    @classmethod
    def from_dict(cls, stored):
        return cls(level=stored["level"], reasons=list(stored["reasons"]), fired=list(stored["fired"]))


def normalise(text):
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"(\w)'(\w)", r"\1\2", text)  # can't -> cant, won't -> wont
    text = text.replace("won't", "will not")
    for phrase, folded in _PHRASE_FOLD.items():
        text = re.sub(rf"\b{phrase}\b", folded, text)
    words = re.split(r"(\W+)", text)
    folded = [_FOLD.get(word, word) for word in words]
    return re.sub(r"\s+", " ", "".join(folded)).strip()


def _negated(norm, start):
    """True when a negator sits in the same clause, within five words before the match. A negator of the
    caller's knowing ("i do not know why he is unresponsive", "not sure") denies nothing about the patient."""
    before = norm[:start]
    clause = _CLAUSE_BREAK.split(before)[-1]
    window = " ".join(clause.split()[-5:])
    return _NEGATOR.search(window) is not None


def red_flags(text):
    """The most urgent level forced by red-flag findings in `text`, with reasons."""
    norm = normalise(reading.readable(text))
    came_round = _CAME_ROUND.search(norm) is not None
    result = RuleResult()
    for rule in RULES:
        for match in rule.pattern.finditer(norm):
            if _discounted(rule, norm, match, came_round):
                continue
            span = _span(rule, norm, match)
            if span is None:
                continue
            result.fired.append(rule.name)
            result.reasons.append(f"{rule.reason} (\u201c{norm[span[0]:span[1]].strip()}\u201d)")
            result.level = rule.level if result.level is None else min(result.level, rule.level)
            break
    return result


def _discounted(rule, norm, match, came_round):
    """Whether this match does not count: negated, hypothetical, in the past, over (come round, cleared), or
    without the second finding its rule requires."""
    start, end = match.span()
    return ((rule.negatable and _negated(norm, start) and not _SAID_BY_NEGATION.search(match.group(0)))
            or _hypothetical(norm, start) or _in_the_past(norm, start, end)
            or (rule.consciousness and came_round)
            or (rule.cleared_by is not None and _first_present(rule.cleared_by, norm, end) is not None)
            or (rule.requires is not None and not _requirement_met(rule, norm)))


def _in_the_past(norm, start, end):
    """True when the words right after the match put it months or years back ("an overdose last year", "a
    stroke two years ago"), or the words right before it do ("history of", "died of"), within its clause."""
    return _PAST_AFTER.match(norm, end) is not None or _PAST_BEFORE.search(norm, max(0, start - PAST_REACH),
                                                                            start) is not None


def _hypothetical(norm, start):
    """True when the sentence holding `start` asks about a hypothetical before it ("what if", "in case")."""
    sentence = _SENTENCE_BREAK.split(norm[:start])[-1]
    return _HYPOTHETICAL.search(sentence) is not None


def _span(rule, norm, match):
    """What a fired rule quotes: the match, with its `then` or `near` finding; None when that is missing."""
    if rule.then is not None:  # searched to the text's end, so that its lookaheads see past the window
        found = _first_present(rule.then, norm, match.end())
        return None if found is None or found.start() > match.end() + rule.within else (match.start(), found.end())
    if rule.near is not None:
        return _beside(rule, norm, match)
    return match.start(), match.end()


def _beside(rule, norm, match):
    """The span from `match` to its nearest `near` finding, not negated, at most `rule.within` characters away
    on either side; None when there is none."""
    def gap(found):  # 0 when the two overlap ("snakebite" is a snake and a bite)
        return max(found.start() - match.end(), match.start() - found.end(), 0)

    close = [found for found in rule.near.finditer(norm) if gap(found) <= rule.within
             and not _negated(norm, found.start())]
    if not close:
        return None
    found = min(close, key=gap)
    return min(match.start(), found.start()), max(match.end(), found.end())


def _requirement_met(rule, norm):
    return _first_present(rule.requires, norm) is not None


def _first_present(pattern, norm, start=0):
    """The first match of `pattern` in norm[start:] that is not negated in its own clause, or None."""
    for match in pattern.finditer(norm, start):
        if not _negated(norm, match.start()):
            return match
    return None


def apply_rules(model_level, rule_level):
    """Rules can only raise urgency: the result is never less urgent than the model's level."""
    if rule_level is None:
        return model_level
    if model_level is None:
        return rule_level
    return min(model_level, rule_level)
