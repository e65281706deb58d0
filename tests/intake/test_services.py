import pytest

from triage_site.intake import services, tasks
from triage_site.intake.models import MedicalRequest, Status

pytestmark = pytest.mark.django_db(transaction=True)


def queued_request(**fields):
    return MedicalRequest.objects.create(text="chest pain", status=Status.QUEUED, urgency=1,
                                         predicted_output_tokens=100, **fields)


def test_record_classification_is_idempotent():
    medical_request = MedicalRequest.objects.create(text="sprained ankle")
    assert services.record_classification(medical_request.pk, urgency=3, predicted_output_tokens=80)
    assert not services.record_classification(medical_request.pk, urgency=0, predicted_output_tokens=10)
    medical_request.refresh_from_db()
    assert (medical_request.status, medical_request.urgency) == (Status.QUEUED, 3)


def test_done_is_written_once():
    medical_request = queued_request()
    assert services.mark_running(medical_request.pk, prompt_tokens=12)
    assert services.mark_done(medical_request.pk, answer="Call 999.", generated_tokens=4)
    assert not services.mark_done(medical_request.pk, answer="again", generated_tokens=9)
    medical_request.refresh_from_db()
    assert (medical_request.answer, medical_request.generated_tokens) == ("Call 999.", 4)




def test_unclassified_requests_are_sent_again(monkeypatch):
    sent = []
    monkeypatch.setattr(tasks, "enqueue_classification", lambda pk: sent.append(pk) or True)
    old = MedicalRequest.objects.create(text="fever")
    MedicalRequest.objects.filter(pk=old.pk).update(created_at=old.created_at.replace(year=2020))
    MedicalRequest.objects.create(text="just arrived")
    assert tasks.resend_unclassified(older_than_seconds=30) == 1
    assert sent == [old.pk]


def test_broker_outage_leaves_request_stored(monkeypatch):
    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.classify_request, "delay", broker_down)
    medical_request = MedicalRequest.objects.create(text="cut finger")
    assert tasks.enqueue_classification(medical_request.pk) is False
    medical_request.refresh_from_db()
    assert medical_request.status == Status.RECEIVED


def test_withdrawn_answer_is_kept_for_the_audit_and_marked(monkeypatch):
    medical_request = queued_request()
    services.mark_running(medical_request.pk, prompt_tokens=12)
    changed = []
    monkeypatch.setattr(services.events, "publish_request_changed", changed.append)
    assert services.mark_withdrawn(medical_request.pk, answer="Call. Call. Call.", generated_tokens=30,
                                   reason="a loop")
    assert not services.mark_withdrawn(medical_request.pk, answer="again", generated_tokens=9, reason="a loop")
    assert not services.mark_done(medical_request.pk, answer="later", generated_tokens=40)
    medical_request.refresh_from_db()
    assert (medical_request.status, medical_request.answer, medical_request.answer_withdrawn) == (
        Status.DONE, "Call. Call. Call.", "withdrawn: a loop")
    assert medical_request.generated_tokens == 30 and medical_request.finished_at is not None
    assert changed == [medical_request.pk]
