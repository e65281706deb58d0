import json
import threading
import time

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from triage_site.guidance import selection
from triage_site.intake import overrides, services
from triage_site.intake.models import AppendOnlyError, MedicalRequest, Status, UrgencyOverride

pytestmark = pytest.mark.django_db(transaction=True)


def queued(text="chest tightness", urgency=3, **fields):
    return MedicalRequest.objects.create(text=text, status=Status.QUEUED, urgency=urgency, model_urgency=urgency,
                                         rule_urgency=None, predicted_output_tokens=100, **fields)


def test_supervisor_override_is_audited_with_what_triage_said(supervisor):
    medical_request = queued(rule_reason="")
    overrides.override_urgency(medical_request.pk, new_urgency=1, reason="Known cardiac history", user=supervisor)
    medical_request.refresh_from_db()
    assert medical_request.urgency == 1
    entry = UrgencyOverride.objects.get()
    assert (entry.old_urgency, entry.new_urgency, entry.model_urgency, entry.changed_by) == (3, 1, 3, supervisor)
    assert entry.reason == "Known cardiac history"


def test_dispatcher_without_permission_cannot_override(dispatcher, dispatcher_client):
    medical_request = queued()
    with pytest.raises(PermissionDenied):
        overrides.override_urgency(medical_request.pk, new_urgency=0, reason="x", user=dispatcher)
    response = dispatcher_client.post(reverse("intake:override", args=[medical_request.pk]),
                                      {"new_urgency": 0, "reason": "I think so"})
    assert response.status_code == 403
    assert dispatcher_client.get(reverse("intake:overrides")).status_code == 403
    assert dispatcher_client.get(reverse("intake:overrides_export")).status_code == 403
    assert dispatcher_client.get(reverse("intake:bulk_raise")).status_code == 403
    medical_request.refresh_from_db()
    assert medical_request.urgency == 3 and not UrgencyOverride.objects.exists()


def test_override_form_needs_a_reason_and_refuses_finished_requests(client, supervisor):
    client.force_login(supervisor)
    open_request = queued()
    page = client.post(reverse("intake:override", args=[open_request.pk]), {"new_urgency": 1, "reason": " "},
                       follow=True).content.decode()
    assert "Give a reason for the change" in page
    finished = queued(text="done already")
    MedicalRequest.objects.filter(pk=finished.pk).update(status=Status.DONE)
    page = client.post(reverse("intake:override", args=[finished.pk]), {"new_urgency": 0, "reason": "late"},
                       follow=True).content.decode()
    assert f"Request {finished.pk} is already done; only open requests can be re-prioritised." in page
    assert not UrgencyOverride.objects.exists()


BAD_REASONS = [
    (" ", "Give a reason"), ("x" * 2001, "too long: at most 2,000 characters (it has 2,001)"),
    ("bell\x07", "control characters"), ("4 ycnegru\u202e", "text-direction"), ("isolate\u2066", "text-direction"),
]


@pytest.mark.parametrize("reason, message", BAD_REASONS)
def test_the_form_and_the_board_socket_refuse_a_bad_reason_with_the_same_message(client, supervisor, reason,
                                                                                 message):
    from triage_site.dispatch import board_actions  # the socket's handler, as the consumer calls it

    client.force_login(supervisor)
    medical_request = queued()
    page = client.post(reverse("intake:override", args=[medical_request.pk]), {"new_urgency": 1, "reason": reason},
                       follow=True).content.decode()
    result = board_actions.perform(supervisor, {"type": "change_urgency", "request_id": medical_request.pk,
                                                "urgency": 1, "reason": reason})
    assert not result["ok"] and message in result["message"]
    assert result["message"] in page  # the form says exactly what the socket says: one rule
    assert not UrgencyOverride.objects.exists()


def test_the_form_refuses_a_nul_in_the_reason(client, supervisor):
    client.force_login(supervisor)
    medical_request = queued()
    page = client.post(reverse("intake:override", args=[medical_request.pk]), {"new_urgency": 1, "reason": "ok\x00"},
                       follow=True).content.decode()
    assert 'class="message error"' in page and not UrgencyOverride.objects.exists()
    with pytest.raises(ValidationError, match="control characters"):
        overrides.clean_reason("ok\x00")


@pytest.mark.parametrize("reason", [None, 5, 0, True, 1.5, ["fell"], {"why": "fell"}])
def test_a_reason_that_is_not_text_is_refused_clearly(supervisor, reason):
    medical_request = queued()
    with pytest.raises(ValidationError) as refused:
        overrides.override_urgency(medical_request.pk, new_urgency=1, reason=reason, user=supervisor)
    expected = "Give a reason" if reason is None else "The reason must be text"
    assert expected in " ".join(refused.value.messages)
    assert overrides.clean_reason("  wheeze  ") == "wheeze"
    assert not UrgencyOverride.objects.exists()


def test_request_page_shows_the_audit_log_and_the_control(client, supervisor):
    client.force_login(supervisor)
    medical_request = queued()
    client.post(reverse("intake:override", args=[medical_request.pk]), {"new_urgency": 1, "reason": "<b>vitals</b>"})
    page = client.get(reverse("intake:detail", args=[medical_request.pk])).content.decode()
    assert "&lt;b&gt;vitals&lt;/b&gt;" in page
    assert "3 → 1" in page
    assert 'action="%s"' % reverse("intake:override", args=[medical_request.pk]) in page


def test_audit_log_is_append_only(supervisor):
    medical_request = queued()
    entry = overrides.override_urgency(medical_request.pk, new_urgency=2, reason="r", user=supervisor)
    entry.reason = "rewritten"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()


def test_bulk_raise_only_raises_open_requests(client, supervisor):
    client.force_login(supervisor)
    low = queued("injured at Central Station concourse", urgency=4)
    already = queued("crush injury, central station", urgency=0)
    finished = queued("minor cut at Central Station", urgency=4)
    MedicalRequest.objects.filter(pk=finished.pk).update(status=Status.DONE)
    other = queued("fever at home", urgency=4)
    data = {"phrase": "central station", "new_urgency": 1, "reason": "Mass-casualty incident"}
    preview = client.post(reverse("intake:bulk_raise"), data).content.decode()
    assert "<strong>2</strong> open request(s) match" in preview
    assert not UrgencyOverride.objects.exists()
    client.post(reverse("intake:bulk_raise"), {**data, "confirm": "True"})
    urgencies = dict(MedicalRequest.objects.values_list("pk", "urgency"))
    assert (urgencies[low.pk], urgencies[already.pk], urgencies[finished.pk], urgencies[other.pk]) == (1, 0, 4, 4)
    assert list(UrgencyOverride.objects.values_list("request_id", "bulk_label")) == [
        (low.pk, "mentions 'central station'")]


def test_export_is_evaluation_data_with_the_latest_label(client, supervisor):
    client.force_login(supervisor)
    medical_request = queued("short of breath after bee sting", urgency=3)
    overrides.override_urgency(medical_request.pk, new_urgency=1, reason="first look", user=supervisor)
    overrides.override_urgency(medical_request.pk, new_urgency=0, reason="lips swelling", user=supervisor)
    response = client.get(reverse("intake:overrides_export"))
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert len(lines) == 1
    assert (lines[0]["text"], lines[0]["label"], lines[0]["model_urgency"]) == (
        "short of breath after bee sting", 0, 3)


def test_override_reaches_a_running_worker_within_a_second(supervisor):
    from inference_worker.build import build_service

    # A long answer with no end-of-sequence token, so the request is still running when overridden.
    service = build_service(model_name="tiny", device="cpu", policy="semantic", max_answer_tokens=3000)
    service.engine.eos.clear()
    medical_request = MedicalRequest.objects.create(text="sore knee for a week")
    services.record_classification(medical_request.pk, urgency=4, predicted_output_tokens=3000)
    stop = threading.Event()
    worker = threading.Thread(target=service.run, args=(stop,))
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while medical_request.pk not in service.active and time.monotonic() < deadline:
            time.sleep(0.02)
        assert urgency_in_engine(service, medical_request.pk) == 4
        changed = time.monotonic()
        overrides.override_urgency(medical_request.pk, new_urgency=0, reason="caller now confused", user=supervisor)
        while urgency_in_engine(service, medical_request.pk) != 0 and time.monotonic() - changed < 5:
            time.sleep(0.01)
        assert urgency_in_engine(service, medical_request.pk) == 0
        assert time.monotonic() - changed < 1.0
    finally:
        stop.set()
        worker.join(10)


def urgency_in_engine(service, request_id):
    """None while the worker holds no such request (between dropping a restarted answer and claiming it again)."""
    request = service.engine.sched.get(request_id)
    return None if request is None else request.urgency


def test_new_cards_restart_the_answer_grounded_in_them(supervisor, monkeypatch):
    """The answer is grounded in the cards and checked against them: an override that changes the cards sends the
    request back to the queue with no answer, and the worker generates it again with the new cards."""
    from inference_worker.build import build_service
    from inference_worker.guard import DegenerationGuard

    monkeypatch.setattr(DegenerationGuard, "check", lambda self, text: None)  # the random model's noise may stand

    service = build_service(model_name="tiny", device="cpu", policy="semantic", max_answer_tokens=3000)
    service.engine.eos.clear()
    service.save_interval = 0.05
    service.card_check = False  # the random model's text follows no card; shown as it streams
    old_cards = [card.reference() for card in selection.shown_cards([{"id": "self_care"}])]
    medical_request = MedicalRequest.objects.create(text="sore knee for a week")
    services.record_classification(medical_request.pk, urgency=4, predicted_output_tokens=3000, cards=old_cards)
    stop = threading.Event()
    worker = threading.Thread(target=service.run, args=(stop,))
    worker.start()
    try:
        wait_for(lambda: MedicalRequest.objects.get(pk=medical_request.pk).answer)
        first_claim = MedicalRequest.objects.get(pk=medical_request.pk).claim_token
        overrides.override_urgency(medical_request.pk, new_urgency=0, reason="now unresponsive", user=supervisor)
        medical_request.refresh_from_db()
        new_cards = [card["id"] for card in medical_request.cards]
        assert new_cards and "self_care" not in new_cards
        assert medical_request.claim_token > first_claim
        before = medical_request.classifier_detail["answers_before"]
        assert before[0]["answer"] and before[0]["cards"][0]["id"] == "self_care"
        wait_for(lambda: urgency_in_engine(service, medical_request.pk) == 0)
        prompt = service.tokenizer.decode(service.engine.seqs[medical_request.pk].token_ids)
        assert selection.CARDS[new_cards[0]].title in prompt and selection.CARDS["self_care"].title not in prompt
        wait_for(lambda: MedicalRequest.objects.get(pk=medical_request.pk).status == Status.RUNNING)
    finally:
        stop.set()
        worker.join(10)


def wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# --- confirm urgency: requests the classifier was unsure of ----------------------------------------

UNSURE = {"reasoning": "Top level 3 at 41%; a dispatcher should confirm.",
          "decision_points": [{"point": "B", "level": 1, "reason": "breathing difficulty",
                               "evidence": "<short of breath>"}]}


def unsure(**fields):
    return queued(needs_review=True, classifier_detail=UNSURE, **fields)


def test_confirm_keeps_the_level_in_the_audit_and_clears_review(supervisor):
    medical_request = unsure()
    overrides.confirm_urgency(medical_request.pk, user=supervisor)
    medical_request.refresh_from_db()
    assert (medical_request.urgency, medical_request.needs_review) == (3, False)
    entry = UrgencyOverride.objects.get()
    assert (entry.old_urgency, entry.new_urgency, entry.changed_by, entry.reason) == (
        3, 3, supervisor, overrides.CONFIRM_REASON)
    with pytest.raises(ValidationError):  # a second click records nothing more
        overrides.confirm_urgency(medical_request.pk, user=supervisor)
    assert UrgencyOverride.objects.count() == 1


def test_change_from_the_prompt_is_audited_and_clears_review(client, supervisor):
    client.force_login(supervisor)
    medical_request = unsure()
    client.post(reverse("intake:override", args=[medical_request.pk]), {"new_urgency": 1, "reason": "wheeze"})
    medical_request.refresh_from_db()
    assert (medical_request.urgency, medical_request.needs_review) == (1, False)
    entry = UrgencyOverride.objects.get()
    assert (entry.old_urgency, entry.new_urgency, entry.reason) == (3, 1, "wheeze")


def test_confirm_through_the_page(client, supervisor):
    client.force_login(supervisor)
    medical_request = unsure()
    page = client.post(reverse("intake:confirm_urgency", args=[medical_request.pk]), follow=True).content.decode()
    assert f"Urgency 3 of request {medical_request.pk} confirmed." in page
    assert 'id="confirm-urgency"' not in page
    assert "3 → 3" in page and overrides.CONFIRM_REASON in page


def test_only_supervisors_may_confirm(client, dispatcher, dispatcher_client):
    medical_request = unsure()
    with pytest.raises(PermissionDenied):
        overrides.confirm_urgency(medical_request.pk, user=dispatcher)
    assert dispatcher_client.post(reverse("intake:confirm_urgency", args=[medical_request.pk])).status_code == 403
    dispatcher_client.logout()
    assert client.post(reverse("intake:confirm_urgency", args=[medical_request.pk])).status_code == 302
    medical_request.refresh_from_db()
    assert medical_request.needs_review and not UrgencyOverride.objects.exists()


def test_bulk_raise_leaves_the_review_to_a_person(supervisor):
    medical_request = unsure(text="injured at the stadium", urgency=4)
    overrides.bulk_raise(overrides.open_requests_mentioning("stadium"), new_urgency=1, reason="incident",
                         user=supervisor, label="stadium")
    medical_request.refresh_from_db()
    assert (medical_request.urgency, medical_request.needs_review) == (1, True)


def test_request_page_prompts_only_when_review_is_needed(client, supervisor, dispatcher):
    flagged, sure = unsure(), queued()
    client.force_login(supervisor)
    page = client.get(reverse("intake:detail", args=[flagged.pk])).content.decode()
    assert 'id="confirm-urgency"' in page and 'role="alert"' in page and "Confirm urgency" in page
    assert "The classifier was unsure" in page and "a dispatcher should confirm." in page
    assert "Decision point B: breathing difficulty — “&lt;short of breath&gt;”" in page
    assert 'action="%s"' % reverse("intake:confirm_urgency", args=[flagged.pk]) in page
    assert "Confirm level 3" in page
    assert page.count('action="%s"' % reverse("intake:override", args=[flagged.pk])) == 1
    page = client.get(reverse("intake:detail", args=[sure.pk])).content.decode()
    assert 'id="confirm-urgency"' not in page and "Confirm level" not in page
    client.force_login(dispatcher)
    page = client.get(reverse("intake:detail", args=[flagged.pk])).content.decode()
    assert "The classifier was unsure" in page and "A supervisor must confirm" in page
    assert "Confirm level" not in page and reverse("intake:confirm_urgency", args=[flagged.pk]) not in page
    assert 'class="override-form"' not in page


def test_raising_the_urgency_chooses_cards_for_the_new_level_and_keeps_the_old_ones(supervisor):
    medical_request = queued(text="my chest feels tight", urgency=3, cards=[{"id": "self_care", "version": 1,
                                                                           "title": "Self-care", "send_now": False}],
                             classifier_detail={"card_triggers": {"chest_pain": 0.71}})
    overrides.override_urgency(medical_request.pk, new_urgency=1, reason="sounds cardiac", user=supervisor)
    medical_request.refresh_from_db()
    assert [card["id"] for card in medical_request.cards] == ["chest_pain"]
    assert medical_request.classifier_detail["cards_shown_before"][0]["id"] == "self_care"
    overrides.override_urgency(medical_request.pk, new_urgency=0, reason="now unresponsive", user=supervisor)
    medical_request.refresh_from_db()
    assert [card["id"] for card in medical_request.cards] == ["chest_pain"]  # it says "send help now" already
