"""The trained urgency head (decision point C, and a second opinion on A and B): logistic regression on
encoder embeddings + character n-grams + the level the decision points support.

Features per request: the L2-normalised sentence embedding (MiniLM by default), TF-IDF of
character 3-5-grams (robust to misspellings) and of words and word pairs, a one-hot of the most urgent
level that decision points A, B, D and the red-flag rules support (0, 1 or none; `decision_points.py`),
each finding's best clause score, and the element-wise maximum of the clause embeddings. Two
multinomial logistic regressions share the features: one for the urgency level 0..4, one for the
answer-length bucket (see `length.py`).

Decision: cost-sensitive. With class probabilities p, the chosen level minimises the expected
cost sum_true p[true] * cost[true, pred], where predicting a level LESS urgent than the truth
costs `under_cost` per level when the truth is a life threat or high risk (levels 0-1),
`minor_under_cost` per level when it is not (levels 2-4), and a MORE urgent one costs 1 per level.
Missing a life threat is the error that does harm; over-triaging a sprain to "urgent" takes a
place that a real emergency needs, so the two costs differ.

The artefact (`data/classifier/model/urgency_head.joblib`, plus a readable `urgency_head.json`) carries a
version string, the encoder name and the SHA-256 of the training files and of the feature libraries
(findings, danger zones, context and red-flag rules), and is small enough to commit. Training is
deterministic (lbfgs, fixed data order, no random state involved).
"""
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scheduler.urgency import NUM_LEVELS

from . import DATA_DIR
from .ordinal import BlendedUrgencyModel, every_level

ARTIFACT_DIR = DATA_DIR / "model"
ARTIFACT_PATH = ARTIFACT_DIR / "urgency_head.joblib"
META_PATH = ARTIFACT_DIR / "urgency_head.json"
TRAIN_PATH = DATA_DIR / "train.jsonl"
# Written by hand, scenario by scenario, in many styles, by writers who never saw the evaluation set
# (data/classifier/written/PROVENANCE.md).
WRITTEN_DIR = DATA_DIR / "written"
HELDOUT_PATH = DATA_DIR / "heldout.jsonl"
# Written by separate writers who never saw the training data; frozen, for evaluation only (PROVENANCE.md).
# The second set (two more writers, with expected cards) was written to measure the next step blind.
INDEPENDENT_PATH = DATA_DIR / "independent" / "requests.jsonl"
SECOND_INDEPENDENT_PATH = DATA_DIR / "independent" / "second.jsonl"
INDEPENDENT_PATHS = (INDEPENDENT_PATH, SECOND_INDEPENDENT_PATH)
HEAD_SCHEMA = "4"
# Chosen by leave-scenario-out cross-validation on the training data (docs/classifier.md), never on the
# independent sets: under-triage of levels 0-1 costs 4 times over-triage per level, of levels 2-4 0.75
# times; C is the inverse regularisation.
DEFAULT_UNDER_COST = 4.0
DEFAULT_MINOR_UNDER_COST = 0.75
DEFAULT_C = 16.0
# The classifier's training data beyond its own parts: the card trigger's parts 5-8, written by four more
# helpers, each row with its urgency and scenario. Parts 1-4 carry no scenario (so leave-scenario-out could
# not keep their paraphrases apart) and lean to level 0; with them, leave-scenario-out got worse.
CARD_TRAINING_PARTS = [DATA_DIR.parent / "guidance" / "train" / f"part{k}.jsonl" for k in range(5, 9)]


def training_paths():
    """The default training data: the generated set, every written part and the card trigger's parts 5-8."""
    return [TRAIN_PATH, *sorted(WRITTEN_DIR.glob("*.jsonl")), *CARD_TRAINING_PARTS]


class HeadUnavailable(RuntimeError):
    """The head artefact is missing, unreadable or was trained for another encoder."""


class EvaluationLeak(ValueError):
    """Training data holds a text of the independent evaluation set, which would flatter every figure."""


def file_label(path):
    """A training file's name relative to data/, so that parts of two folders cannot be confused."""
    path = Path(path).resolve()
    root = DATA_DIR.parent.resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else path.name


def read_jsonl(path):
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            row = json.loads(line)
            if "text" not in row:
                raise ValueError(f"{path}:{number}: no 'text'")
            rows.append(row)
    return rows


def _comparable(text):
    return " ".join(text.lower().split())


def refuse_evaluation_texts(texts, evaluation_paths=INDEPENDENT_PATHS, what="the independent evaluation set"):
    """Raise EvaluationLeak if any of `texts` is (up to case and spacing) a text of `what` at `evaluation_paths`."""
    for evaluation_path in evaluation_paths:
        if not Path(evaluation_path).exists():
            continue
        frozen = {_comparable(row["text"]) for row in read_jsonl(evaluation_path)}
        leaked = [text for text in texts if _comparable(text) in frozen]
        if leaked:
            raise EvaluationLeak(f"{len(leaked)} training text(s) belong to {what} "
                                 f"{evaluation_path}, which is never trained on; first: {leaked[0][:80]!r}")


def forced_level_features(forced_levels):
    """One-hot of the most urgent level the decision points support: 0, 1 or none."""
    out = np.zeros((len(forced_levels), 3), dtype=np.float32)
    for i, level in enumerate(forced_levels):
        out[i, 2 if level is None else min(level, 1)] = 1.0
    return out


def cost_matrix(under_cost, minor_under_cost=None, levels=NUM_LEVELS):
    """cost[true, pred]: under-triage (pred > true) costs `under_cost` a level for a true level 0-1 and
    `minor_under_cost` (default: the same) for 2-4; over-triage costs 1 a level."""
    minor_under_cost = under_cost if minor_under_cost is None else minor_under_cost
    cost = np.zeros((levels, levels))
    for true in range(levels):
        for pred in range(levels):
            per_level = under_cost if true <= 1 else minor_under_cost
            cost[true, pred] = per_level * (pred - true) if pred > true else (true - pred)
    return cost


@dataclass
class UrgencyHead:
    vectorizer: object
    urgency_model: object
    length_model: object
    length_tokens: dict
    encoder_name: str
    version: str
    train_sha256: str
    under_cost: float = DEFAULT_UNDER_COST
    meta: dict = field(default_factory=dict)
    # None: as under_cost (artefacts saved before the two costs were split).
    minor_under_cost: float | None = None

    def features(self, texts, embeddings, forced_levels, clause_features):
        return features(self.vectorizer, texts, embeddings, forced_levels, clause_features)

    def predict(self, texts, embeddings, forced_levels, clause_features):
        """(urgency probabilities n x levels, length-bucket probabilities n x buckets); forced_levels are
        the most urgent levels the texts' decision points support (None for none), clause_features the
        findings' scores and pooled clause embeddings (findings.match_batch), in the same order."""
        x = self.features(list(texts), embeddings, forced_levels, clause_features)
        return every_level(self.urgency_model, x), self.length_model.predict_proba(x)

    def decide(self, probabilities):
        """Cost-sensitive level per row: a possible life threat or high risk -> the more urgent level; unsure
        between two of levels 2-4 -> the likelier, ties to the less urgent (minor_under_cost < 1)."""
        # expected[i, pred] = sum_true p[i, true] * cost[true, pred]
        expected = np.asarray(probabilities) @ cost_matrix(self.under_cost, self.minor_under_cost)
        return expected.argmin(axis=1)

    def expected_tokens(self, length_probabilities):
        buckets = self.length_model.classes_
        tokens = np.array([self.length_tokens[int(b)] for b in buckets], dtype=float)
        return np.asarray(length_probabilities) @ tokens


def features(vectorizer, texts, embeddings, forced_levels, clause_features):
    from scipy.sparse import csr_matrix, hstack

    return hstack([vectorizer.transform(list(texts)), csr_matrix(np.asarray(embeddings)),
                   csr_matrix(forced_level_features(forced_levels)),
                   csr_matrix(np.asarray(clause_features, dtype=np.float32))]).tocsr()


def feature_library_paths():
    """The files the features are read with: the finding, danger-zone, context and red-flag libraries, the
    patterns that read numbers (a reading that changes moves the danger zones' verdicts like a library would),
    and the text as read (answered questions as statements)."""
    from . import answers, context, decision_points, findings, measurements, reading, rules

    return [findings.FINDINGS_PATH, decision_points.DANGER_ZONE_PATH, context.CONTEXT_RULES_PATH, rules.RULES_PATH,
            Path(measurements.__file__), Path(reading.__file__), Path(answers.__file__)]


def read_training(paths):
    rows = [row for path in paths for row in read_jsonl(path)]
    refuse_evaluation_texts([row["text"] for row in rows])
    return rows


def readable_texts(rows):
    """The rows' texts as the classifier reads them in service (reading.readable), for fitting and folds."""
    from . import reading

    return [reading.readable(row["text"]) for row in rows]


def prepared(rows, encoder_name):
    """(embeddings, supports, finding scores) of the rows' texts: the expensive, model-independent part."""
    from . import decision_points, encoder, rules

    texts = readable_texts(rows)
    embeddings = encoder.encode(texts, encoder_name)
    supports, clause_features = decision_points.assess_batch(
        texts, [rules.red_flags(text) for text in texts], encoder.encode_with(encoder_name), encoder_name)
    return embeddings, supports, np.asarray(clause_features)


def forced_levels(supports):
    from . import decision_points

    return [decision_points.most_urgent(found) for found in supports]


def fit(rows, embeddings, forced_levels, clause_features, c=DEFAULT_C):
    """(vectorizer, urgency model, length model) fitted on the rows."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_union

    from . import length

    texts = readable_texts(rows)
    labels = np.array([int(row["label"]) for row in rows])
    buckets = np.array([int(row.get("length_bucket", length.default_bucket(int(row["label"])))) for row in rows])
    vectorizer = make_union(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2, dtype=np.float32),
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=2, dtype=np.float32),
    ).fit(texts)
    x = features(vectorizer, texts, embeddings, forced_levels, clause_features)
    text_columns = len(vectorizer.get_feature_names_out())  # features() puts the tf-idf n-grams first
    return (vectorizer, BlendedUrgencyModel(c, text_columns).fit(x, labels),
            LogisticRegression(C=c, max_iter=5000).fit(x, buckets))


def train(paths=None, encoder_name=None, under_cost=DEFAULT_UNDER_COST, c=DEFAULT_C,
          minor_under_cost=DEFAULT_MINOR_UNDER_COST):
    """Fit the head on the JSONL files `paths` (text, label, length_bucket); returns an UrgencyHead."""
    from . import encoder, length

    paths = [Path(path) for path in (paths or training_paths())]
    encoder_name = encoder_name or encoder.configured_name()
    rows = read_training(paths)
    embeddings, supports, clause_features = prepared(rows, encoder_name)
    vectorizer, urgency_model, length_model = fit(rows, embeddings, forced_levels(supports), clause_features, c)
    # The version names the data and the libraries the features come from: a change to either retrains.
    sha = hashlib.sha256(b"".join(Path(path).read_bytes() for path in [*paths, *feature_library_paths()])).hexdigest()
    head = UrgencyHead(vectorizer=vectorizer, urgency_model=urgency_model, length_model=length_model,
                       length_tokens=dict(length.BUCKET_TOKENS), encoder_name=encoder_name,
                       version=f"{HEAD_SCHEMA}.{sha[:10]}", train_sha256=sha, under_cost=under_cost,
                       minor_under_cost=minor_under_cost)
    head.meta = {"version": head.version, "encoder": encoder_name, "train_files": [file_label(p) for p in paths],
                 "feature_libraries": [p.name for p in feature_library_paths()],
                 "train_sha256": sha, "train_rows": len(rows), "under_cost": under_cost,
                 "minor_under_cost": minor_under_cost, "C": c,
                 "urgency_model": "mean of multinomial and ordinal (one binary per cut) logistic regressions, "
                                  "mixed with naive Bayes on the tf-idf n-grams",
                 "features": "embedding + char 3-5-gram and word 1-2-gram tf-idf + decision-point level one-hot + finding scores + max-pooled clause embeddings",
                 "length_tokens": head.length_tokens}
    return head


def refit_lengths(head, recorded, encoder_name=None):
    """Refit the length model on answers actually written: `recorded` holds (text, predicted, generated tokens);
    the target is the bucket nearest each generated length. The urgency model is untouched."""
    from sklearn.linear_model import LogisticRegression

    from . import length

    rows = [{"text": text} for text, _, _ in recorded]
    buckets = np.array([length.bucket_of(tokens) for _, _, tokens in recorded])
    if len(set(buckets.tolist())) < 2:
        raise ValueError(f"the {len(recorded)} recorded answers fall in fewer than two length buckets: "
                         "nothing to learn an order from")
    embeddings, supports, clause_features = prepared(rows, encoder_name or head.encoder_name)
    x = head.features(readable_texts(rows), embeddings, forced_levels(supports), clause_features)
    head.length_model = LogisticRegression(C=head.meta.get("C", DEFAULT_C), max_iter=5000).fit(x, buckets)
    head.meta["length_refit"] = {"source": "recorded answers in the database", "rows": len(recorded),
                                 "buckets": {str(b): int((buckets == b).sum()) for b in sorted(set(buckets.tolist()))}}
    return head


def save(head, path=ARTIFACT_PATH, meta_path=META_PATH):
    import joblib

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(head, path, compress=3)
    Path(meta_path).write_text(json.dumps(head.meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def load(path=ARTIFACT_PATH, encoder_name=None):
    return load_artifact(path, encoder_name, HeadUnavailable, "classifier head", "train_classifier")


def load_artifact(path, encoder_name, unavailable, what, command):
    """A joblib artefact trained on an encoder's embeddings; `unavailable` is raised when it is missing,
    unreadable or was trained on another encoder than `encoder_name`."""
    import joblib

    try:
        artifact = joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - missing or unreadable artefact
        raise unavailable(f"cannot load {what} {path}: {exc}") from exc
    if encoder_name and artifact.encoder_name != encoder_name:
        raise unavailable(f"{what} was trained on encoder {artifact.encoder_name!r}, configured encoder is "
                          f"{encoder_name!r}: retrain with {command}")
    return artifact
