"""The learned card trigger: trained on its own data only, up to date with it, used by selection, and
optional (cards are still chosen when its artefact cannot load)."""
import hashlib
import json
import zlib

import numpy as np
import pytest

from triage_site.guidance import card_head, selection
from triage_site.guidance.clauses import clause_vectors_batch


def bag_of_words_encoder(texts, dims=64):
    """A deterministic stand-in for MiniLM: each word adds to one dimension; rows are L2-normalised."""
    out = np.zeros((len(texts), dims), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            out[row, zlib.crc32(word.encode()) % dims] += 1.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def write_rows(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


TRAINING = (
    [{"text": f"{who} is choking on {what} and cannot breathe", "cards": ["choking"]}
     for who in ("my son", "my wife", "the old man", "a customer") for what in ("a grape", "meat", "a sweet")]
    + [{"text": f"{who} fell into the {where} and we pulled him out", "cards": ["drowning"]}
       for who in ("my son", "my husband", "a swimmer", "the dog walker") for where in ("pool", "river", "lake")]
    + [{"text": f"{what} for {who}, nothing urgent", "cards": ["self_care"]}
       for what in ("a repeat prescription", "hay fever advice", "a sore throat") for who in ("me", "my mum", "him")]
)


def test_the_head_learns_the_cards_and_not_the_fallbacks(tmp_path):
    path = write_rows(tmp_path / "train.jsonl", TRAINING)
    head = card_head.train([path], bag_of_words_encoder, "test-encoder", c=4.0)
    assert head.card_ids == ["choking", "drowning"]
    texts = ["the baby is choking on a grape", "we pulled him out of the river"]
    clauses = clause_vectors_batch(texts, bag_of_words_encoder)
    choking, drowning = head.probabilities(texts, [vectors for _, vectors in clauses])
    assert choking["choking"] > 0.5 > choking["drowning"]
    assert drowning["drowning"] > 0.5 > drowning["choking"]


def test_a_word_spelt_another_way_still_counts(tmp_path):
    """Neither the words nor the stand-in encoder know "chokeing" or "rivverr"; their character n-grams do."""
    head = card_head.train([write_rows(tmp_path / "train.jsonl", TRAINING)], bag_of_words_encoder, "test-encoder")
    texts = ["chokeing", "rivverr"]
    clauses = clause_vectors_batch(texts, bag_of_words_encoder)
    choking, drowning = head.probabilities(texts, [vectors for _, vectors in clauses])
    assert choking["choking"] > choking["drowning"]
    assert drowning["drowning"] > drowning["choking"]


def test_an_artefact_from_before_character_n_grams_is_refused(tmp_path):
    head = card_head.train([write_rows(tmp_path / "train.jsonl", TRAINING)], bag_of_words_encoder, "test-encoder")
    head.characters = None
    card_head.save(head, tmp_path / "old.joblib")
    with pytest.raises(card_head.CardHeadUnavailable, match="retrain"):
        card_head.load(tmp_path / "old.joblib")


def test_training_refuses_a_text_of_the_tuning_or_evaluation_sets(tmp_path):
    held_out = card_head.read_rows([card_head.HELD_OUT_PATHS[1]])[0]["text"]
    path = write_rows(tmp_path / "train.jsonl", TRAINING + [{"text": "  " + held_out.upper(), "cards": ["choking"]}])
    with pytest.raises(ValueError, match="held-out"):
        card_head.train([path], bag_of_words_encoder, "test-encoder")


def test_the_committed_head_is_trained_on_the_committed_data():
    meta = json.loads(card_head.META_PATH.read_text())
    paths = card_head.training_paths()
    assert meta["train_files"] == [card_head.file_label(path) for path in paths]
    sha = hashlib.sha256(b"".join(path.read_bytes() for path in paths)).hexdigest()
    assert meta["train_sha256"] == sha, "data/guidance/train changed: run manage.py train_card_head"
    head = card_head.load()
    assert head.train_sha256 == sha and set(head.card_ids) <= set(selection.CARDS)


class FixedHead:
    card_ids = ["heat_illness", "choking"]

    def probabilities(self, texts, clause_vectors):
        return [{"heat_illness": 0.9, "choking": 0.2} for _ in texts]


def test_a_card_the_head_is_sure_of_is_chosen(monkeypatch, loaded_model):
    _, encoder_name = loaded_model
    from triage_site.classification import encoder

    monkeypatch.setattr(card_head.HEAD, "get", lambda name: FixedHead())
    text = "he has been working on the roof all afternoon and now he is talking nonsense"
    (cards, strengths), = selection.select_batch([text], [1], [set()], encoder.encode_with(encoder_name), encoder_name)
    assert "heat_illness" in [card.id for card in cards]
    assert strengths["heat_illness"] == pytest.approx(0.9) and "choking" not in strengths


def test_without_the_artefact_cards_are_still_chosen(monkeypatch, tmp_path, loaded_model, caplog):
    _, encoder_name = loaded_model
    from triage_site.classification import encoder

    monkeypatch.setattr(card_head, "ARTIFACT_PATH", tmp_path / "missing.joblib")
    monkeypatch.setattr(card_head, "HEAD", card_head._Loaded())
    text = "he's choking on a sweet and can't get any air in"
    (cards, _), = selection.select_batch([text], [0], [set()], encoder.encode_with(encoder_name), encoder_name)
    assert "choking" in [card.id for card in cards]
    assert "learned card triggers unavailable" in caplog.text
