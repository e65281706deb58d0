"""A call's clauses and their sentence embeddings: what the phrase triggers and the learned trigger read."""
import numpy as np

from triage_site.classification import findings


def clause_vectors_batch(texts, encode):
    """(clause spans, their embeddings) per text, in one encoder batch."""
    spans = [findings.segments(text) or [(0, len(text))] for text in texts]
    flat = [text[start:end] for text, text_spans in zip(texts, spans) for start, end in text_spans]
    vectors = np.asarray(encode(flat))
    bounds = np.cumsum([0] + [len(text_spans) for text_spans in spans])
    return [(text_spans, vectors[start:end]) for text_spans, start, end in zip(spans, bounds[:-1], bounds[1:])]
