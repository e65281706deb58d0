import pytest


@pytest.fixture(autouse=True)
def no_batch_window(settings):
    """The classification task's batch window is a wait for peers; the tests make their batches themselves."""
    settings.TRIAGE_CLASSIFIER_BATCH_WINDOW_S = 0
