"""Project-wide test set-up.

`make test` runs the suite twice: embedded (SQLite, in-memory channel layer, eager
Celery) and, for tests marked `stack`, against the real PostgreSQL and Redis.
"""
import gc
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRIAGE_INFERENCE_MODEL", "tiny")
# The tiny model writes noise, which never follows a card: with the check on, every answer would be held back
# and withdrawn, and the tests of streaming would see nothing. The check has its own tests (test_guard.py,
# test_service_guard.py), which turn it on.
os.environ.setdefault("TRIAGE_ANSWER_CARD_CHECK", "0")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("django_db") or item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.stack)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    """Database connections opened in the worker threads of async tests outlive those threads until
    the garbage collector frees them; free them before pytest-django drops the test database, which
    PostgreSQL refuses while they are open ("being accessed by other users")."""
    yield
    gc.collect()


@pytest.fixture
def dispatcher(django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("dispatcher1", password="correct horse battery")
    user.groups.add(Group.objects.get_or_create(name="dispatcher")[0])
    return user


@pytest.fixture
def supervisor(django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("supervisor1", password="correct horse battery")
    user.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    return user


@pytest.fixture
def dispatcher_client(client, dispatcher):
    client.force_login(dispatcher)
    return client


@pytest.fixture(scope="session")
def loaded_model():
    """The real urgency encoder + trained head, loaded once (about 2-6 s)."""
    from triage_site.classification import classifier

    head, encoder_name = classifier.MODEL.get()
    return head, encoder_name


@pytest.fixture
def model_unavailable(settings, tmp_path):
    """The head artefact is missing: the classifier must fall back to rules. Restores the model after."""
    from triage_site.classification import classifier

    saved = (classifier.MODEL.head, classifier.MODEL.encoder_name)
    settings.TRIAGE_CLASSIFIER_HEAD = str(tmp_path / "missing.joblib")
    settings.TRIAGE_CLASSIFIER_RELOAD_S = 0
    classifier.MODEL.reset()
    yield
    classifier.MODEL.reset()
    if saved[0] is not None:
        classifier.MODEL.head, classifier.MODEL.encoder_name = saved
