"""Context of a finding, with medspacy's ConText: negated, resolved, historical, hypothetical, someone else.

`judge(text, spans)` takes character spans (a finding's clause or a number's text) and returns, for each,
the set of context categories that apply. ConText (NegEx's successor) scopes each trigger ("no",
"denies", "history of", "what if") over the words it governs. Its defaults come with medspacy; our
additions, and the default FAMILY rule we drop, are data in data/classifier/context.toml.

A trigger that opens or closes the span itself also counts ("no chest pain" as one clause), except a
negation inside a finding whose own wording is negative ("he is not breathing" is the finding, not its
denial). ConText ends a trigger's scope at "but", so "fainted but came round" is not read as resolved:
the safe side.
"""
import logging
import threading
import tomllib

from . import DATA_DIR

CONTEXT_RULES_PATH = DATA_DIR / "context.toml"
# Categories that mean "this finding does not count for the patient now".
DISCOUNTING = {"NEGATED_EXISTENCE", "RESOLVED", "HISTORICAL", "HYPOTHETICAL", "OTHER_PERSON"}
_CLAUSE_ENDS = {",", ";", ":"}
_lock = threading.Lock()
_pipeline = {}


def _rules():
    from medspacy.context import ConTextRule

    data = tomllib.loads(CONTEXT_RULES_PATH.read_text(encoding="utf-8"))
    return [ConTextRule(literal, entry["category"], direction=entry["direction"])
            for entry in data["rule"] for literal in entry["literals"]]


def pipeline():
    """(nlp, context) built once per process: spaCy's blank English, a sentencizer and ConText."""
    with _lock:
        if not _pipeline:
            logging.getLogger("PyRuSH").setLevel(logging.WARNING)
            import spacy
            from medspacy.context import ConText

            nlp = spacy.blank("en")
            nlp.add_pipe("sentencizer")
            defaults = ConText(nlp, rules="default", input_span_type="group", span_group_name="findings")
            keep = [rule for rule in defaults.rules if rule.category != "FAMILY"]
            context = ConText(nlp, rules=None, input_span_type="group", span_group_name="findings", max_scope=12)
            context.add(keep + _rules())
            _pipeline.update(nlp=nlp, context=context)
        return _pipeline["nlp"], _pipeline["context"]


def judge(text, spans, negative_named=None, within_clause=False):
    """For each (start, end) character span of `text`, the set of ConText categories that apply.

    `within_clause`: a negation, history or hypothetical outside the span counts only from the span's own
    clause (no , ; or : between): for a number in a list of findings ("no chest pain, sats 84%", "stroke last
    year, BP 220/120 now"). A resolution still counts from the next clause ("pulse 180, settled now")."""
    nlp, context = pipeline()
    negative_named = list(negative_named or [False] * len(spans))
    doc = nlp(text)
    targets = [doc.char_span(start, end, alignment_mode="expand") for start, end in spans]
    doc.spans["findings"] = [target for target in targets if target is not None]
    context(doc)
    modifiers = list(doc._.context_graph.modifiers)
    result = []
    for target, negative in zip(targets, negative_named):
        if target is None:
            result.append(set())
            continue
        categories = set()
        for modifier in modifiers:
            start, end = modifier.modifier_span
            inside = target.start <= start and end <= target.end
            if (_applies_inside(modifier, target, start, end) if inside
                    else modifier in target._.modifiers and _same_sentence(doc, start, target)
                    and not (within_clause and _clause_between(doc, modifier, target))):
                categories.add(modifier.category)
        if negative:
            categories.discard("NEGATED_EXISTENCE")
        result.append(categories & DISCOUNTING)
    return result


def _same_sentence(doc, token, target):
    """Whether the trigger at `token` is in a sentence that `target` overlaps. With `max_scope` set, medspacy
    scopes a trigger over a window of tokens that ignores sentence ends, so "there's no alcohol involved. It's
    her citalopram, about 25 tablets" would deny the tablets; NegEx scopes a trigger within its sentence."""
    sentence = doc[token].sent
    return sentence.start < target.end and target.start < sentence.end


def _clause_between(doc, modifier, target):
    """Whether a clause ends between a trigger outside `target` and `target`; resolutions are exempt."""
    if modifier.category == "RESOLVED":
        return False
    start, end = modifier.modifier_span
    between = doc[end:target.start] if end <= target.start else doc[target.end:start]
    return any(token.text in _CLAUSE_ENDS for token in between)


def _applies_inside(modifier, target, start, end):
    """A trigger inside the span governs it when it opens the span ("no chest pain", "denies pain") or,
    looking back, closes it ("chest pain, resolved"); one in the middle governs only part of it ("chest
    pain and can't catch his breath")."""
    if modifier.direction == "FORWARD":
        return start <= target.start + 1 and end < target.end
    if modifier.direction == "BACKWARD":
        return end >= target.end - 1 and start > target.start
    return modifier.direction == "BIDIRECTIONAL" and (start <= target.start + 1 or end >= target.end - 1)
