"""Findings that survive paraphrase: each clause of a request is matched against a library of finding
descriptions with the sentence encoder, then its context is judged with ConText.

The library is data (data/classifier/findings.toml, written following the ESI handbook's decision points
A and B). "can't rouse him", "not answering", "hard to wake" all land on the finding `unresponsive`
because their embeddings sit near its descriptions; a clause nearer to a reassuring description
("awake and talking") supports nothing.
"""
import re
import tomllib
from dataclasses import dataclass

import numpy as np

from . import DATA_DIR, context
from .encoder import PerEncoder

FINDINGS_PATH = DATA_DIR / "findings.toml"
# A clause closer (cosine) than FEATURE_FLOOR to a finding's description gives the learned head the
# finding's score as a feature; closer than the finding's own `threshold` (findings.toml, set on the
# training data), the finding is a decision-point support on its own.
FEATURE_FLOOR = 0.5
MAX_SEGMENTS = 16
# A clause that opens like a question, after an optional speaker's tag ("CT:", "Dispatcher:").
_QUESTION_START = re.compile(r"\s*(?:[\w ]{1,20}:\s*)?(?:is|are|was|were|does|do|did|can|could|has|have)\b", re.I)
_CLAUSE_SPLIT = re.compile(r"[.!?;\n]+|,|\s+-+\s+|\bbut\b|\bthough\b|\balthough\b|\bso\b|\bthen\b|\bwhile\b",
                           re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    id: str
    point: str
    level: int
    label: str
    negative_named: bool
    descriptions: tuple
    threshold: float | None = None
    contradicted_by: re.Pattern | None = None
    unless: re.Pattern | None = None
    denied: re.Pattern | None = None

    def decides(self, score):
        return self.threshold is not None and score >= self.threshold

    def contradicted(self, clause, question=False):
        """The encoder hears the words, not their polarity: "he's breathing normally" sits as close to "he is not
        breathing" as a paraphrase does. A clause that says the opposite in so many words (`contradicted_by`),
        with none of the finding's own cue words (`unless`: "not", "gasping", "nothing since") and not as a
        question ("Is he breathing?"), does not match; nor does one that denies the cue words themselves
        (`denied`: "he hasn't stopped breathing", "no gasping") and holds no other cue."""
        if question:
            return False
        if self.denied is not None and self.denied.search(clause):
            return self.unless is None or not self.unless.search(self.denied.sub(" ", clause))
        if self.contradicted_by is None or not self.contradicted_by.search(clause):
            return False
        return self.unless is None or not self.unless.search(clause)


@dataclass(frozen=True)
class Match:
    finding: Finding
    evidence: str
    start: int
    end: int
    score: float


class FindingsFileError(ValueError):
    """The finding library is missing or malformed."""


def load_library(path=FINDINGS_PATH):
    """(findings, reassuring descriptions) from the library file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        findings = [Finding(entry["id"], entry["point"], int(entry["level"]), entry["label"],
                            bool(entry.get("negative_named", False)), tuple(entry["descriptions"]),
                            entry.get("threshold"), *_polarity_patterns(entry))
                    for entry in data["finding"]]
        reassuring = tuple(description for entry in data["reassuring"] for description in entry["descriptions"])
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise FindingsFileError(f"cannot read the finding library {path}: {exc!r}") from exc
    for finding in findings:
        if finding.point not in ("A", "B") or not finding.descriptions:
            raise FindingsFileError(f"{path}: finding {finding.id!r} needs point A or B and descriptions")
    return findings, reassuring


def _polarity_patterns(entry):
    """(contradicted_by, unless, denied) compiled; a pattern that does not compile names its finding."""
    try:
        return tuple(re.compile(entry[key], re.IGNORECASE) if entry.get(key) else None
                     for key in ("contradicted_by", "unless", "denied"))
    except (re.error, TypeError) as exc:
        raise ValueError(f"finding {entry.get('id')!r}: bad contradicted_by/unless/denied pattern: {exc}") from exc


FINDINGS, REASSURING = load_library()


def _encoded_descriptions(encode):
    """(description vectors, owning finding's number or -1 for a reassuring description)."""
    texts, owners = [], []
    for number, finding in enumerate(FINDINGS):
        texts += finding.descriptions
        owners += [number] * len(finding.descriptions)
    texts += REASSURING
    owners += [-1] * len(REASSURING)
    return np.asarray(encode(texts)), np.asarray(owners)


INDEX = PerEncoder(_encoded_descriptions)


def segments(text):
    """(start, end) character spans of the clauses of `text`. Pairs of neighbouring clauses were tried as
    well and dropped: they doubled the encoder's work (docs/classifier.md, latency)."""
    spans, position = [], 0
    for separator in _CLAUSE_SPLIT.finditer(text + "."):
        start, end = position, separator.start()
        position = separator.end()
        while start < end and not text[start].isalnum():
            start += 1
        if any(ch.isalpha() for ch in text[start:end]):
            spans.append((start, end))
    return spans[:MAX_SEGMENTS]


def score_vector(matches):
    """Each finding's best clause score for one text (0 where none)."""
    scores = np.zeros(len(FINDINGS), dtype=np.float32)
    for match in matches:
        number = FINDINGS.index(match.finding)
        scores[number] = max(scores[number], match.score)
    return scores


def match_batch(texts, encode, encoder_name, threshold=FEATURE_FLOOR):
    """(findings per text, clause features per text). A text's findings are its best clause per finding
    that is not negated, resolved, historical, hypothetical or about someone else. Its clause features,
    for the learned head, are those findings' scores and the element-wise maximum of its clause
    embeddings (a key finding late in a long call is not averaged away). `encode(list of str)` returns
    normalised embeddings."""
    descriptions, owners = INDEX.get(encode, encoder_name)
    spans = [segments(text) or [(0, len(text))] for text in texts]
    flat = [text[start:end] for text, text_spans in zip(texts, spans) for start, end in text_spans]
    embedded = np.asarray(encode(flat))
    similarity = embedded @ descriptions.T
    matches, features, row = [], [], 0
    for text, text_spans in zip(texts, spans):
        rows = slice(row, row + len(text_spans))
        row += len(text_spans)
        found = _text_matches(text, text_spans, similarity[rows], owners, threshold)
        matches.append(found)
        features.append(np.concatenate([score_vector(found), embedded[rows].max(axis=0)]))
    return matches, features


def asked(text, start, end):
    """Whether the clause text[start:end] is a question ("Is he breathing?", "CT: Is she breathing")."""
    return text[end:end + 1] == "?" or bool(_QUESTION_START.match(text[start:end]))


def _text_matches(text, spans, similarity, owners, threshold):
    best = {}
    for (start, end), scores in zip(spans, similarity):
        top = int(scores.argmax())
        owner, score = int(owners[top]), float(scores[top])
        if owner < 0 or score < threshold or FINDINGS[owner].contradicted(text[start:end], asked(text, start, end)):
            continue
        if owner not in best or score > best[owner].score:
            best[owner] = Match(FINDINGS[owner], text[start:end].strip(), start, end, score)
    matches = list(best.values())
    if not matches:
        return []
    judged = context.judge(text, [(m.start, m.end) for m in matches], [m.finding.negative_named for m in matches])
    return [m for m, categories in zip(matches, judged) if not categories]
