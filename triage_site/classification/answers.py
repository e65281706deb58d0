"""A call-taker's yes-or-no question and the caller's answer, read as the statement they make together.

"Is he breathing? Caller: No." says "he is not breathing", and "Any gasping? No." says "no gasping", but the
rules and the finding library see a question (which states nothing) and a bare "No" (which names nothing). Worse,
the sentence encoder hears "Is he breathing normally?" near "he is not breathing", whatever the answer. So the
question is rewritten as a statement with the answer's polarity, and the answer is kept as typed:
"Is he awake? Caller: No, I'm shaking him" reads "he is not awake. Caller: No, I'm shaking him".

Only plain polar questions are rewritten: an auxiliary and a short subject ("is he", "can you", "has the baby"),
or "any ..."; an answer of yes or no at the very start of the reply. A "no" to a list denies each item ("Any
fever, rash or stiff neck? No" reads "no fever, no rash or stiff neck"). Questions that hold a negation or a
second verb, a "no" to two things asked together ("awake and talking?"), a "yes" to alternatives ("fever or
rash?"), and replies that hedge ("I think so", "not really", "not sure", "no idea") are left as they were."""
import re

_AUXILIARY = r"is|are|was|were|does|do|did|has|have|had|can|could|will|would"
_PRONOUN = r"he|she|it|they|you|we|i|there|anyone|anybody|someone|somebody"
_DETERMINER = r"the|your|my|his|her|their|this|that|our"
_SUBJECT = rf"(?:{_PRONOUN}|(?:{_DETERMINER}) [a-z]+(?: (?:boy|girl|man|woman|baby|son|daughter|one|child))?)"
_SPEAKER = r"(?:[A-Za-z][\w -]{0,20}: *)?"  # "Dispatcher: ", "Caller: ", "CT: ", "C: "
_NO = r"no|nope|nah|negative|i do ?n[o']?t think so"
_YES = r"yes|yeah|yep|yup|affirmative"
_QUESTION = re.compile(
    rf"(?P<lead>(?:^|(?<=[.?!:,;\n]))\s*(?:(?:ok|okay|and|so|right|now|sorry),? )?)"
    rf"(?:(?P<aux>{_AUXILIARY}) (?P<subject>{_SUBJECT}) (?P<rest>[^.?!:\n]+?)"
    rf"|(?P<any>any(?:thing)?) (?P<things>[^.?!:\n]+?))"
    rf"\?+(?P<between>\s*{_SPEAKER}[\"']? *)(?P<answer>{_NO}|{_YES})(?![\w'])(?! (idea|clue)\b)",
    re.IGNORECASE)
# A negation, or a second question ("any fever or is she unwell?"); "have" is also a main verb ("did he have").
_NEGATION = re.compile(r"\b(not|no|never|nothing|none|is|are|was|were|does|do|did|can|could|will|would)\b|n't\b",
                       re.IGNORECASE)
# Items after a comma; the last, after "or", is already within reach of the "no" before it ("no rash or fever"),
# and a "no" put before it could make a new finding ("trouble swallowing or breathing" -> "no breathing").
_LIST_BREAK = re.compile(r",\s*(?!(?:or|and)\b)", re.IGNORECASE)
# Two things asked together: "no" may deny either ("awake and talking? No"), "yes" may affirm either ("or").
_AMBIGUOUS_IF_DENIED = re.compile(r"\band\b|&", re.IGNORECASE)
_AMBIGUOUS_IF_AFFIRMED = re.compile(r"\bor\b|,", re.IGNORECASE)
_ANYONE_DENIED = {"anyone": "no one", "anybody": "nobody", "someone": "no one", "somebody": "nobody"}
_ANYONE_AFFIRMED = {"anyone": "someone", "anybody": "somebody"}


def as_statements(text):
    """`text` with each answered polar question rewritten as the statement the answer makes."""
    return _QUESTION.sub(_statement, text)


def _statement(match):
    denied = re.fullmatch(_NO, match["answer"], re.IGNORECASE) is not None
    asked = match["things"] or match["rest"]
    ambiguous = (_AMBIGUOUS_IF_DENIED if denied else _AMBIGUOUS_IF_AFFIRMED).search(asked)
    if ambiguous or _NEGATION.search(asked):
        return match.group(0)
    stated = _any_statement(match, denied) if match["any"] else _auxiliary_statement(match, denied)
    return f"{match['lead']}{stated}.{match['between'] or ' '}{match['answer']}"


def _auxiliary_statement(match, denied):
    """"is he awake" + no -> "he is not awake"; "is anyone hurt" + no -> "no one is hurt"; "is she still
    fitting" + no -> "she is no longer fitting"."""
    aux, subject, rest = match["aux"], match["subject"], match["rest"]
    key = subject.lower()
    if denied and key in _ANYONE_DENIED:
        return f"{_ANYONE_DENIED[key]} {aux.lower()} {rest}"
    if not denied:
        return f"{_ANYONE_AFFIRMED.get(key, subject)} {aux.lower()} {rest}"
    if rest.lower().startswith("still "):  # "is she still fitting" + no: it has stopped
        return f"{subject} {aux.lower()} no longer {_each_denied(rest[len('still '):])}"
    negated = "cannot" if aux.lower() == "can" else f"{aux.lower()} not"
    return f"{subject} {negated} {_each_denied(rest)}"


def _any_statement(match, denied):
    """"any chest pain" + no -> "no chest pain"; "anything in her mouth" + yes -> "something in her mouth"."""
    things = _each_denied(match["things"]) if denied else match["things"]
    if match["any"].lower() == "anything":
        return f"{'nothing' if denied else 'something'} {things}"
    return f"no {things}" if denied else things


def _each_denied(listed):
    return _LIST_BREAK.sub(lambda found: f"{found.group(0)}no ", listed)
