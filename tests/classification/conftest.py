"""Fixtures for the classifier tests. The encoder + head load once per test session."""
import json

import pytest

from triage_site.classification import classifier


@pytest.fixture(scope="session")
def loaded_model():
    """The real encoder + trained head, loaded once (about 2-6 s)."""
    head, encoder_name = classifier.MODEL.get()
    return head, encoder_name


@pytest.fixture
def model_unavailable(settings, tmp_path):
    """The head artefact is missing: the classifier must fall back to rules. Restores the model after."""
    saved = (classifier.MODEL.head, classifier.MODEL.encoder_name)
    settings.TRIAGE_CLASSIFIER_HEAD = str(tmp_path / "missing.joblib")
    settings.TRIAGE_CLASSIFIER_RELOAD_S = 0
    classifier.MODEL.reset()
    yield
    classifier.MODEL.reset()
    if saved[0] is not None:
        classifier.MODEL.head, classifier.MODEL.encoder_name = saved


@pytest.fixture(autouse=True)
def no_batch_window(settings):
    settings.TRIAGE_CLASSIFIER_BATCH_WINDOW_S = 0


@pytest.fixture
def write_jsonl(tmp_path):
    def write(rows, name="data.jsonl"):
        path = tmp_path / name
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        return path
    return write
