"""A call's clauses are encoded once per classification batch: the finding matcher and the card trigger both
read them (encoding is most of a classification's CPU time, and Celery's throughput under load)."""
import numpy as np

from triage_site.classification import encoder


def counting_encoder(monkeypatch):
    seen = []

    def fake(texts, name, batch_size):
        seen.append(list(texts))
        return np.asarray([[float(len(text)), 1.0] for text in texts], dtype=np.float32)

    monkeypatch.setattr(encoder, "_encode", fake)
    return seen


def test_a_text_is_encoded_once_within_the_block_and_rows_keep_their_order(monkeypatch):
    seen = counting_encoder(monkeypatch)
    with encoder.reusing_embeddings():
        first = encoder.encode(["ab", "abc", "ab"], "minilm")
        second = encoder.encode(["abc", "abcd"], "minilm")
    assert seen == [["ab", "abc"], ["abcd"]]
    assert first[:, 0].tolist() == [2, 3, 2] and second[:, 0].tolist() == [3, 4]


def test_nothing_is_kept_after_the_block_or_outside_it(monkeypatch):
    seen = counting_encoder(monkeypatch)
    with encoder.reusing_embeddings():
        encoder.encode(["ab"], "minilm")
    encoder.encode(["ab"], "minilm")
    encoder.encode(["ab"], "minilm")
    with encoder.reusing_embeddings():
        encoder.encode(["ab"], "minilm")
    assert seen == [["ab"]] * 4


def test_a_nested_block_shares_the_outer_one_and_encoders_are_kept_apart(monkeypatch):
    seen = counting_encoder(monkeypatch)
    with encoder.reusing_embeddings():
        encoder.encode(["ab"], "minilm")
        with encoder.reusing_embeddings():
            encoder.encode(["ab"], "minilm")
            encoder.encode(["ab"], "other")
        encoder.encode(["ab"], "minilm")
    assert seen == [["ab"], ["ab"]]
