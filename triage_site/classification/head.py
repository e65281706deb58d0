"""The trained urgency head: logistic regression on encoder embeddings + character n-grams + rule flags.

Features per request: the L2-normalised sentence embedding (MiniLM by default), TF-IDF of
character 3-5-grams (robust to misspellings), and a one-hot of the level the red-flag rules
force (0, 1 or none). Two multinomial logistic regressions share the features: one for the
urgency level 0..4, one for the answer-length bucket (see `length.py`).

Decision: cost-sensitive. With class probabilities p, the chosen level minimises the expected
cost sum_true p[true] * cost[true, pred], where predicting a level LESS urgent than the truth
costs `under_cost` per level and a MORE urgent one costs 1 per level. With under_cost > 1, when
the model is unsure between two neighbouring levels it picks the more urgent one.

The artefact (`data/classifier/model/urgency_head.joblib`, plus a readable `urgency_head.json`) carries a
version string, the encoder name and the SHA-256 of the training file, and is small enough to
commit. Training is deterministic (lbfgs, fixed data order, no random state involved).
"""
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scheduler.urgency import NUM_LEVELS

from . import DATA_DIR, rules

ARTIFACT_DIR = DATA_DIR / "model"
ARTIFACT_PATH = ARTIFACT_DIR / "urgency_head.joblib"
META_PATH = ARTIFACT_DIR / "urgency_head.json"
TRAIN_PATH = DATA_DIR / "train.jsonl"
HELDOUT_PATH = DATA_DIR / "heldout.jsonl"
# Written by a separate writer who never saw the training data; frozen, for evaluation only (PROVENANCE.md).
INDEPENDENT_PATH = DATA_DIR / "independent" / "requests.jsonl"
HEAD_SCHEMA = "1"


class HeadUnavailable(RuntimeError):
    """The head artefact is missing, unreadable or was trained for another encoder."""


class EvaluationLeak(ValueError):
    """Training data holds a text of the independent evaluation set, which would flatter every figure."""


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


def refuse_evaluation_texts(texts, evaluation_path=INDEPENDENT_PATH):
    """Raise EvaluationLeak if any of `texts` is (up to case and spacing) a text of the independent set."""
    if not Path(evaluation_path).exists():
        return
    frozen = {_comparable(row["text"]) for row in read_jsonl(evaluation_path)}
    leaked = [text for text in texts if _comparable(text) in frozen]
    if leaked:
        raise EvaluationLeak(f"{len(leaked)} training text(s) belong to the independent evaluation set "
                             f"{evaluation_path}, which is never trained on; first: {leaked[0][:80]!r}")


def file_sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def rule_features(findings):
    """One-hot of the level each text's red flags force: 0, 1 or none."""
    out = np.zeros((len(findings), 3), dtype=np.float32)
    for i, found in enumerate(findings):
        out[i, 2 if found.level is None else found.level] = 1.0
    return out


def cost_matrix(under_cost, levels=NUM_LEVELS):
    """cost[true, pred]: under-triage (pred > true) costs `under_cost` a level, over-triage 1."""
    cost = np.zeros((levels, levels))
    for true in range(levels):
        for pred in range(levels):
            cost[true, pred] = under_cost * (pred - true) if pred > true else (true - pred)
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
    under_cost: float = 2.0
    meta: dict = field(default_factory=dict)

    def features(self, texts, embeddings, findings):
        from scipy.sparse import csr_matrix, hstack

        return hstack([self.vectorizer.transform(texts), csr_matrix(np.asarray(embeddings)),
                       csr_matrix(rule_features(findings))]).tocsr()

    def predict(self, texts, embeddings, findings):
        """(urgency probabilities n x levels, length-bucket probabilities n x buckets); findings are the
        texts' red-flag results, in the same order."""
        x = self.features(list(texts), embeddings, findings)
        return _full_proba(self.urgency_model, x, NUM_LEVELS), self.length_model.predict_proba(x)

    def decide(self, probabilities):
        """Cost-sensitive level per row: unsure between two levels -> the more urgent one."""
        # expected[i, pred] = sum_true p[i, true] * cost[true, pred]
        expected = np.asarray(probabilities) @ cost_matrix(self.under_cost)
        return expected.argmin(axis=1)

    def expected_tokens(self, length_probabilities):
        buckets = self.length_model.classes_
        tokens = np.array([self.length_tokens[int(b)] for b in buckets], dtype=float)
        return np.asarray(length_probabilities) @ tokens


def _full_proba(model, x, levels):
    proba = model.predict_proba(x)
    full = np.zeros((proba.shape[0], levels))
    full[:, [int(c) for c in model.classes_]] = proba
    return full


def train(train_path=TRAIN_PATH, encoder_name=None, under_cost=2.0, c=16.0):
    """Fit the head on `train_path` (JSONL with text, label, length_bucket); returns an UrgencyHead."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from . import encoder, length

    encoder_name = encoder_name or encoder.configured_name()
    rows = read_jsonl(train_path)
    texts = [row["text"] for row in rows]
    refuse_evaluation_texts(texts)
    labels = np.array([int(row["label"]) for row in rows])
    buckets = np.array([int(row.get("length_bucket", length.default_bucket(int(row["label"])))) for row in rows])
    embeddings = encoder.encode(texts, encoder_name)
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2,
                                 lowercase=True, dtype=np.float32)
    vectorizer.fit(texts)
    sha = file_sha256(train_path)
    head = UrgencyHead(vectorizer=vectorizer, urgency_model=None, length_model=None,
                       length_tokens=dict(length.BUCKET_TOKENS), encoder_name=encoder_name,
                       version=f"{HEAD_SCHEMA}.{sha[:10]}", train_sha256=sha, under_cost=under_cost)
    x = head.features(texts, embeddings, [rules.red_flags(text) for text in texts])
    head.urgency_model = LogisticRegression(C=c, max_iter=5000).fit(x, labels)
    head.length_model = LogisticRegression(C=c, max_iter=5000).fit(x, buckets)
    head.meta = {"version": head.version, "encoder": encoder_name, "train_file": Path(train_path).name,
                 "train_sha256": sha, "train_rows": len(rows), "under_cost": under_cost, "C": c,
                 "features": "embedding + char 3-5-gram tf-idf + rule level one-hot",
                 "length_tokens": head.length_tokens}
    return head


def save(head, path=ARTIFACT_PATH, meta_path=META_PATH):
    import joblib

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(head, path, compress=3)
    Path(meta_path).write_text(json.dumps(head.meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def load(path=ARTIFACT_PATH, encoder_name=None):
    import joblib

    try:
        head = joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - missing or unreadable artefact
        raise HeadUnavailable(f"cannot load classifier head {path}: {exc}") from exc
    if encoder_name and head.encoder_name != encoder_name:
        raise HeadUnavailable(f"head {head.version} was trained on encoder {head.encoder_name!r}, "
                              f"configured encoder is {encoder_name!r}: retrain with train_classifier")
    return head
