"""The Celery task: idempotency, retries with backoff, batching, fallback."""
import pytest

from triage_site.classification import classifier
from triage_site.intake import services, submission, tasks
from triage_site.intake.models import MedicalRequest, Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def notified(monkeypatch):
    events = []
    monkeypatch.setattr(services.worker_link, "notify_worker", events.append)
    return events


def fake_result(level=3):
    return classifier.Classification(urgency=level, predicted_output_tokens=100, model_urgency=level,
                                     classifier_name="fake", detail={"reasoning": "fake"})


def new(text="sprained ankle"):
    return MedicalRequest.objects.create(text=text)  # no on_commit enqueue: the test runs the task


def test_task_classifies_and_is_idempotent(loaded_model, notified):
    medical_request = new("my husband is not breathing")
    assert tasks.classify_request.apply(args=[medical_request.pk]).get() == "classified"
    medical_request.refresh_from_db()
    assert medical_request.status == Status.QUEUED and medical_request.urgency == 0
    assert medical_request.rule_reason and medical_request.classifier_detail["probabilities"]
    first = (medical_request.classified_at, medical_request.urgency)
    assert tasks.classify_request.apply(args=[medical_request.pk]).get() == "skipped"
    medical_request.refresh_from_db()
    assert (medical_request.classified_at, medical_request.urgency) == first
    assert [e["request_id"] for e in notified] == [medical_request.pk]  # queued once


def test_missing_request_is_skipped():
    assert tasks.classify_request.apply(args=[999999]).get() == "skipped"


def test_task_options():
    task = tasks.classify_request
    assert task.acks_late and task.reject_on_worker_lost and task.max_retries >= 3


def test_transient_error_is_retried_then_succeeds(monkeypatch, notified):
    calls = []

    def flaky(texts, findings=None):
        calls.append(list(texts))
        if len(calls) == 1:
            raise ConnectionError("encoder service blip")
        return [fake_result(2) for _ in texts]

    monkeypatch.setattr(classifier, "classify_batch", flaky)
    delays = []
    monkeypatch.setattr(tasks, "backoff_seconds", lambda n: delays.append(n) or 0)
    medical_request = new()
    result = tasks.classify_request.apply(args=[medical_request.pk])
    assert result.get() == "classified"
    assert len(calls) == 2 and delays == [0]
    medical_request.refresh_from_db()
    assert medical_request.status == Status.QUEUED and medical_request.urgency == 2
    assert len(notified) == 1


def test_backoff_grows_exponentially_and_is_capped():
    for n in range(8):
        delay = tasks.backoff_seconds(n)
        expected = min(60, 2 * 2 ** n)
        assert expected / 2 <= delay <= expected


def test_retries_exhausted_fall_back_to_rules_and_nothing_is_lost(monkeypatch, notified):
    def always_down(texts, findings=None):
        raise TimeoutError("encoder timed out")

    monkeypatch.setattr(classifier, "classify_batch", always_down)
    monkeypatch.setattr(tasks, "backoff_seconds", lambda n: 0)
    medical_request = new("she is unresponsive")
    assert tasks.classify_request.apply(args=[medical_request.pk]).get() == "classified"
    medical_request.refresh_from_db()
    assert medical_request.status == Status.QUEUED
    assert medical_request.urgency == 0 and medical_request.needs_review
    assert medical_request.classifier_name == "rules-fallback"
    assert "retries" in medical_request.classifier_detail["fallback_reason"]


def test_fallback_when_model_cannot_load(model_unavailable, notified):
    urgent, plain = new("he is having a stroke, face drooping"), new("need a sick note")
    tasks.classify_request.apply(args=[urgent.pk])
    urgent.refresh_from_db()
    plain.refresh_from_db()
    for medical_request in (urgent, plain):  # both classified in one batch
        assert medical_request.status == Status.QUEUED and medical_request.needs_review
    assert urgent.urgency == 1 and "stroke" in urgent.rule_reason
    assert plain.urgency == 2


def test_requests_waiting_together_are_classified_in_one_batch(monkeypatch, notified):
    batches = []
    monkeypatch.setattr(classifier, "classify_batch",
                        lambda texts, findings=None: batches.append(list(texts)) or [fake_result() for _ in texts])
    leader, second, third = new("a"), new("b"), new("c")
    already = new("d")
    MedicalRequest.objects.filter(pk=already.pk).update(status=Status.QUEUED)
    assert tasks.classify_request.apply(args=[leader.pk]).get() == "classified"
    assert batches == [["a", "b", "c"]]
    for medical_request in (leader, second, third):
        medical_request.refresh_from_db()
        assert medical_request.status == Status.QUEUED
        assert medical_request.classifier_detail["batch"] == {"leader": leader.pk, "size": 3}
    # The peers' own tasks arrive later and find nothing to do.
    assert tasks.classify_request.apply(args=[second.pk]).get() == "skipped"
    assert len(batches) == 1 and len(notified) == 3


def test_batch_size_is_capped(settings, monkeypatch, notified):
    settings.TRIAGE_CLASSIFIER_BATCH_MAX = 2
    batches = []
    monkeypatch.setattr(classifier, "classify_batch",
                        lambda texts, findings=None: batches.append(len(texts)) or [fake_result() for _ in texts])
    first, *rest = [new(str(i)) for i in range(4)]
    tasks.classify_request.apply(args=[first.pk])
    assert batches == [2]
    assert MedicalRequest.objects.filter(status=Status.RECEIVED).count() == 2


def test_a_request_is_claimed_only_once():
    medical_request = new()
    assert services.claim_for_classification(medical_request.pk) is True
    assert services.claim_for_classification(medical_request.pk) is False
    assert services.claim_peers(exclude_id=0, limit=5) == []


def test_a_backlog_is_claimed_red_flags_first_then_oldest_first():
    """Submitted through intake, so that the safety rules have run on each request as it arrived."""
    older_sprain = submission.submit_request(text="sprained ankle playing football, can walk on it")
    older_rash = submission.submit_request(text="mild rash on the arm since yesterday")
    chest_pain = submission.submit_request(text="crushing chest pain spreading to the left arm, sweating")
    arrest = submission.submit_request(text="my husband collapsed and is not breathing")
    assert (arrest.rule_urgency, older_sprain.rule_urgency) == (0, None)
    assert 0 < chest_pain.rule_urgency <= 1
    leader = new("leader of the batch")
    assert services.claim_peers(exclude_id=leader.pk, limit=3) == [arrest.pk, chest_pain.pk, older_sprain.pk]
    assert services.claim_peers(exclude_id=leader.pk, limit=3) == [older_rash.pk]


def test_request_left_classifying_by_a_dead_worker_is_still_classified(monkeypatch, notified):
    monkeypatch.setattr(classifier, "classify_batch", lambda texts, findings=None: [fake_result(4) for _ in texts])
    medical_request = new()
    MedicalRequest.objects.filter(pk=medical_request.pk).update(status=Status.CLASSIFYING)
    assert tasks.classify_request.apply(args=[medical_request.pk]).get() == "classified"
    medical_request.refresh_from_db()
    assert medical_request.status == Status.QUEUED and medical_request.urgency == 4


def test_classifier_bug_does_not_lose_the_request(monkeypatch, notified):
    def broken(texts, findings=None):
        raise ValueError("shape mismatch")

    monkeypatch.setattr(classifier, "classify_batch", broken)
    medical_request = new("no chest pain, just a cold")
    tasks.classify_request.apply(args=[medical_request.pk])
    medical_request.refresh_from_db()
    assert medical_request.status == Status.QUEUED and medical_request.needs_review
    assert medical_request.urgency == 2


def test_classification_stores_the_protocol_cards_shown_with_their_versions(loaded_model, notified):
    medical_request = new("my husband is not breathing")
    tasks.classify_request.apply(args=[medical_request.pk]).get()
    medical_request.refresh_from_db()
    ids = [card["id"] for card in medical_request.cards]
    assert "cpr_adult" in ids
    assert all(set(card) == {"id", "version", "title", "send_now"} for card in medical_request.cards)
    assert [(text["id"], text["version"]) for text in medical_request.card_texts] == \
        [(card["id"], card["version"]) for card in medical_request.cards]
    assert all(text["steps"] for text in medical_request.card_texts)
    assert medical_request.classifier_detail["card_triggers"]["cpr_adult"] == 1.0


def test_the_rules_only_fallback_still_chooses_cards(model_unavailable, notified):
    calm, urgent = new("I need a repeat prescription for my inhaler"), new("she is choking and turning blue")
    tasks.classify_and_record([calm.pk, urgent.pk], leader_id=calm.pk)
    calm.refresh_from_db()
    urgent.refresh_from_db()
    assert [card["id"] for card in calm.cards] == ["urgent_care"]  # fallback urgency 2, no specific card
    assert "choking" in [card["id"] for card in urgent.cards]


@pytest.mark.django_db
def test_load_models_loads_the_encoder_and_stores_nothing(monkeypatch):
    """`manage.py serve` calls it before taking requests, so the first caller's card is not held up."""
    from triage_site.classification import encoder

    monkeypatch.setattr(encoder, "_cache", {})
    tasks.load_models()
    assert encoder.configured_name() in encoder._cache
    assert not MedicalRequest.objects.exists()


def test_a_batch_encodes_each_clause_once_for_urgency_and_cards_alike(loaded_model, notified, monkeypatch):
    """The finding matcher and the card trigger read the same clauses; encoding them twice cost Celery a
    third of its throughput under load (docs/reliability.md)."""
    from triage_site.classification import encoder

    real, encoded = encoder._encode, []

    def recording(texts, name, batch_size):
        encoded.extend(texts)
        return real(texts, name, batch_size)

    monkeypatch.setattr(encoder, "_encode", recording)
    requests = [new("my father collapsed, he is not breathing"), new("chest pain and sweating, he looks grey")]
    tasks.classify_and_record([r.pk for r in requests], leader_id=requests[0].pk)
    assert "he is not breathing" in encoded and len(encoded) == len(set(encoded))
    for medical_request in requests:
        medical_request.refresh_from_db()
        assert medical_request.status == Status.QUEUED and medical_request.cards


def test_each_celery_worker_process_loads_the_models_as_it_starts(monkeypatch, caplog):
    from celery.signals import worker_process_init

    import triage_site.celery  # noqa: F401 - connects the receiver, as the worker's -A triage_site does

    calls = []
    monkeypatch.setattr(tasks, "load_models", lambda: calls.append("loaded"))
    worker_process_init.send(sender=None)
    assert calls == ["loaded"]

    def broken():
        raise OSError("encoder files missing")

    monkeypatch.setattr(tasks, "load_models", broken)
    worker_process_init.send(sender=None)  # the worker still starts; the first task loads them
    assert "could not load the classifier's models at worker start" in caplog.text


def test_preloading_can_be_left_to_the_first_task(monkeypatch, settings):
    from celery.signals import worker_process_init

    import triage_site.celery  # noqa: F401

    calls = []
    monkeypatch.setattr(tasks, "load_models", lambda: calls.append("loaded"))
    settings.TRIAGE_CELERY_PRELOAD_MODELS = False
    worker_process_init.send(sender=None)
    assert calls == []
