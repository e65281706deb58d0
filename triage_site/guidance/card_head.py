"""A learned card trigger: which specific cards a whole call needs, learned from labelled requests.

Trigger words and phrases see one clause at a time and one writer's wording; the head reads the whole call
(its clauses' sentence embeddings, pooled, its words, and the character n-grams inside its words, which still
match a word spelt another way: "breathin", "chokeing", "unconcious") and was trained on requests written for
it (`data/guidance/train/`, by writers who saw only the catalogue). Its probability for a card is a trigger
strength like the others; a card is triggered at THRESHOLD or above, and below VETO_BELOW it overrules the
one-clause triggers (selection.overruled). `manage.py train_card_head` fits it and
saves `data/guidance/model/card_head.joblib`; the artefact names the sha256 of its training files, and a
test fails when they change without retraining."""
import hashlib
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from triage_site.classification.head import (
    INDEPENDENT_PATHS, WRITTEN_DIR, file_label, load_artifact, read_jsonl, readable_texts, refuse_evaluation_texts,
)

from .cards import CARDS_PATH, FALLBACKS
from .clauses import clause_vectors_batch

logger = logging.getLogger(__name__)
DATA_DIR = CARDS_PATH.parent
TRAIN_DIR = DATA_DIR / "train"
ARTIFACT_PATH = DATA_DIR / "model" / "card_head.joblib"
META_PATH = ARTIFACT_PATH.with_suffix(".json")
# Never trained on: the tuning set (thresholds are chosen on it) and the frozen independent sets (every file of
# data/guidance/independent/, so a new set is held out as soon as it is committed, and the classifier's, whose
# second set carries expected cards).
HELD_OUT_PATHS = (DATA_DIR / "dev" / "requests.jsonl", *sorted((DATA_DIR / "independent").glob("*.jsonl")),
                  *INDEPENDENT_PATHS)
# The head triggers a card at THRESHOLD or more; a phrase, word or finding trigger for a card it gives less
# than VETO_BELOW is overruled (not a red-flag rule's card). Both chosen out of fold on the training rows,
# grouped by scenario (benchmarks/card_veto.py), and checked on data/guidance/dev (benchmarks/card_threshold.py);
# never on an independent set (docs/guidance.md).
THRESHOLD = 0.4
VETO_BELOW = 0.2
DEFAULT_C = 4.0


class CardHeadUnavailable(RuntimeError):
    """The artefact is missing, unreadable or was trained for another encoder."""


def read_rows(paths):
    rows = [row for path in paths for row in read_jsonl(path)]
    for row in rows:
        if not isinstance(row["text"], str) or not isinstance(row.get("cards"), list):
            raise ValueError(f"a training row needs text and cards: {str(row)[:80]}")
    return rows


def training_paths():
    """data/guidance/train/, and the classifier's written parts whose every row also names its cards."""
    card_labelled = [path for path in sorted(WRITTEN_DIR.glob("*.jsonl"))
                     if all("cards" in row for row in read_jsonl(path))]
    return [*sorted(TRAIN_DIR.glob("*.jsonl")), *card_labelled]


def refuse_held_out(texts):
    """Raise (EvaluationLeak, a ValueError) when a training text is one of the tuning or evaluation sets' texts."""
    refuse_evaluation_texts(texts, HELD_OUT_PATHS, what="a held-out set (tuning or evaluation)")


def pooled(clause_vectors):
    """One row per call: the element-wise maximum and the mean of its clauses' embeddings."""
    return np.vstack([np.concatenate([vectors.max(axis=0), vectors.mean(axis=0)]) for vectors in clause_vectors])


@dataclass
class CardHead:
    vectorizer: object
    model: object
    card_ids: list
    encoder_name: str
    train_sha256: str
    meta: dict = field(default_factory=dict)
    characters: object = None  # character 3-5-gram tf-idf within words

    def features(self, texts, clause_vectors):
        from scipy.sparse import csr_matrix, hstack

        return hstack([self.vectorizer.transform(texts), self.characters.transform(texts),
                       csr_matrix(pooled(clause_vectors))]).tocsr()

    def probabilities(self, texts, clause_vectors):
        """{card id: probability} per text, for every card the head knows."""
        probs = self.model.predict_proba(self.features(list(texts), clause_vectors))
        return [dict(zip(self.card_ids, map(float, row))) for row in probs]


def fit(rows, clause_vectors, encoder_name, c=DEFAULT_C, train_sha256=""):
    """A head fitted on rows ({text, cards}) and their clauses' embeddings; the fallback cards are not learned.
    (`train` for the shipped artefact; benchmarks/card_veto.py for its folds.)"""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

    texts = readable_texts(rows)
    labels = [[card for card in row["cards"] if card not in FALLBACKS.values()] for row in rows]
    binarizer = MultiLabelBinarizer()
    y = binarizer.fit_transform(labels)
    vectorizer = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=2,
                                 dtype=np.float32).fit(texts)
    characters = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=3,
                                 dtype=np.float32).fit(texts)
    head = CardHead(vectorizer, None, list(binarizer.classes_), encoder_name, train_sha256, characters=characters)
    x = head.features(texts, clause_vectors)
    head.model = OneVsRestClassifier(LogisticRegression(C=c, class_weight="balanced", max_iter=5000)).fit(x, y)
    return head


def train(paths, encode, encoder_name, c=DEFAULT_C):
    """Fit a head on the JSONL files `paths` ({text, cards}), refusing any held-out text."""
    rows = read_rows(paths)
    refuse_held_out([row["text"] for row in rows])
    texts = readable_texts(rows)
    sha = hashlib.sha256(b"".join(Path(path).read_bytes() for path in paths)).hexdigest()
    head = fit(rows, [vectors for _, vectors in clause_vectors_batch(texts, encode)], encoder_name, c, sha)
    head.meta = {"encoder": encoder_name, "train_files": [file_label(path) for path in paths], "train_rows": len(rows),
                 "train_sha256": sha, "C": c, "cards": head.card_ids,
                 "features": "word 1-2-gram tf-idf + character 3-5-gram tf-idf within words + max- and "
                             "mean-pooled clause embeddings"}
    return head


def save(head, path=None):
    import joblib

    path = path or ARTIFACT_PATH
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(head, path, compress=3)
    Path(path).with_suffix(".json").write_text(json.dumps(head.meta, indent=2, sort_keys=True) + "\n")


def load(path=None, encoder_name=None):
    head = load_artifact(path or ARTIFACT_PATH, encoder_name, CardHeadUnavailable, "card head", "train_card_head")
    if head.characters is None:
        raise CardHeadUnavailable("card head was trained before character n-grams: retrain with train_card_head")
    return head


class _Loaded:
    """The artefact, loaded once per process and encoder; None when it cannot load (logged once)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_encoder = {}

    def get(self, encoder_name):
        with self.lock:
            if encoder_name not in self.by_encoder:
                try:
                    self.by_encoder[encoder_name] = load(encoder_name=encoder_name)
                except CardHeadUnavailable as exc:
                    logger.error("learned card triggers unavailable, choosing cards without them: %s", exc)
                    self.by_encoder[encoder_name] = None
            return self.by_encoder[encoder_name]


HEAD = _Loaded()
