"""Alerts for level 0-1 requests: raised at classification or by a supervisor, acknowledged once, audited."""
import json
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from triage_site.intake import alerts, overrides, services
from triage_site.intake.models import AlertAcknowledgement, AppendOnlyError, MedicalRequest, Status

pytestmark = pytest.mark.django_db(transaction=True)


def classified(urgency, text="he collapsed"):
    medical_request = services.store_request(text=text)
    services.record_classification(medical_request.pk, urgency=urgency, predicted_output_tokens=50)
    medical_request.refresh_from_db()
    return medical_request


def test_levels_with_an_acknowledgement_target_raise_an_alert_at_classification():
    assert classified(0).alerted_at is not None
    assert classified(1).alerted_at is not None
    assert classified(2).alerted_at is None
    assert classified(4).alerted_at is None


def test_a_supervisor_raising_a_request_to_level_1_raises_its_alert_once(supervisor):
    medical_request = classified(3)
    overrides.override_urgency(medical_request.pk, new_urgency=1, reason="chest pain history", user=supervisor)
    medical_request.refresh_from_db()
    raised = medical_request.alerted_at
    assert raised is not None
    overrides.override_urgency(medical_request.pk, new_urgency=0, reason="now unresponsive", user=supervisor)
    medical_request.refresh_from_db()
    assert medical_request.alerted_at == raised  # the alert was raised once; its clock does not restart


def test_acknowledgement_records_who_when_and_how_long(dispatcher):
    medical_request = classified(0)
    MedicalRequest.objects.filter(pk=medical_request.pk).update(alerted_at=timezone.now() - timedelta(seconds=12))
    ack = alerts.acknowledge(medical_request.pk, user=dispatcher)
    assert ack.acknowledged_by == dispatcher and ack.urgency == 0
    assert 12 <= ack.seconds_to_acknowledge < 20
    assert abs((ack.acknowledged_at - ack.alerted_at).total_seconds() - ack.seconds_to_acknowledge) < 0.001


def test_a_second_acknowledgement_is_refused_naming_the_first(dispatcher, supervisor):
    medical_request = classified(1)
    alerts.acknowledge(medical_request.pk, user=dispatcher)
    with pytest.raises(ValidationError, match=f"already acknowledged by {dispatcher.username}"):
        alerts.acknowledge(medical_request.pk, user=supervisor)
    assert AlertAcknowledgement.objects.count() == 1


def test_only_alerts_can_be_acknowledged_and_only_by_dispatchers(dispatcher, django_user_model):
    with pytest.raises(ValidationError, match="raised no alert"):
        alerts.acknowledge(classified(3).pk, user=dispatcher)
    with pytest.raises(ValidationError, match="There is no request 999"):
        alerts.acknowledge(999, user=dispatcher)
    outsider = django_user_model.objects.create_user("visitor", password="correct horse battery")
    with pytest.raises(PermissionDenied):
        alerts.acknowledge(classified(0).pk, user=outsider)


def test_acknowledgements_are_append_only(dispatcher):
    ack = alerts.acknowledge(classified(0).pk, user=dispatcher)
    with pytest.raises(AppendOnlyError):
        ack.save()
    with pytest.raises(AppendOnlyError):
        ack.delete()


def test_request_page_acknowledges_by_form_and_shows_who_did(dispatcher, dispatcher_client):
    medical_request = classified(0)
    page = dispatcher_client.get(reverse("intake:detail", args=[medical_request.pk])).content.decode()
    assert "not yet acknowledged" in page and 'id="acknowledge-form"' in page
    response = dispatcher_client.post(reverse("intake:acknowledge", args=[medical_request.pk]), follow=True)
    page = response.content.decode()
    assert "Alert acknowledged after" in page
    assert f"Acknowledged by {dispatcher.username}" in page
    again = dispatcher_client.post(reverse("intake:acknowledge", args=[medical_request.pk]), follow=True)
    assert "already acknowledged" in again.content.decode()


def test_request_page_of_a_request_without_alert_hides_the_box(dispatcher_client):
    page = dispatcher_client.get(reverse("intake:detail", args=[classified(4).pk])).content.decode()
    assert '<section class="card alert-box" id="alert" aria-labelledby="alert-title" hidden>' in page


def test_acknowledgements_are_exported_with_the_audit(dispatcher, supervisor, client):
    medical_request = classified(0)
    alerts.acknowledge(medical_request.pk, user=dispatcher)
    client.force_login(supervisor)
    response = client.get(reverse("intake:acknowledgements_export"))
    rows = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert rows == [{
        "kind": "acknowledgement", "request_id": medical_request.pk, "urgency": 0,
        "alerted_at": rows[0]["alerted_at"], "acknowledged_at": rows[0]["acknowledged_at"],
        "acknowledged_by": dispatcher.username, "seconds_to_acknowledge": rows[0]["seconds_to_acknowledge"],
    }]
    assert reverse("intake:acknowledgements_export") in client.get(reverse("intake:overrides")).content.decode()


def test_target_settings_are_read_from_the_environment_with_clear_errors(monkeypatch):
    from triage_site import settings as project_settings

    monkeypatch.setenv("TRIAGE_ACKNOWLEDGE_TARGETS_S", "10,20,-,-,-")
    assert project_settings.env_targets("TRIAGE_ACKNOWLEDGE_TARGETS_S", None, allow_none=True) == (
        10.0, 20.0, None, None, None)
    monkeypatch.setenv("TRIAGE_FIRST_TOKEN_TARGETS_S", "1,2,3")
    with pytest.raises(ImproperlyConfigured, match="TRIAGE_FIRST_TOKEN_TARGETS_S needs 5"):
        project_settings.env_targets("TRIAGE_FIRST_TOKEN_TARGETS_S", None)


def test_an_alert_lowered_before_acknowledgement_leaves_the_queue(supervisor, settings):
    from triage_site.dispatch import selectors

    medical_request = classified(0)
    assert [row["id"] for row in selectors.board_snapshot()["alerts"]] == [medical_request.pk]
    overrides.override_urgency(medical_request.pk, new_urgency=3, reason="caller exaggerated", user=supervisor)
    assert selectors.board_snapshot()["alerts"] == []
