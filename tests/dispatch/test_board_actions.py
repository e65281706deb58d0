"""Acknowledge, confirm and change from the board: the plain function, and the socket with its authorisation."""
import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from triage_site.dispatch import board_actions, selectors
from triage_site.dispatch.models import WorkerHeartbeat
from triage_site.dispatch.services import record_busy
from triage_site.intake import alerts, services
from triage_site.intake.models import AlertAcknowledgement, MedicalRequest, Status, UrgencyOverride
from tests.dispatch.test_board import communicator, of_type, receive_until

pytestmark = pytest.mark.django_db(transaction=True)


def classified(urgency, text="he collapsed", needs_review=False):
    medical_request = services.store_request(text=text)
    services.record_classification(medical_request.pk, urgency=urgency, predicted_output_tokens=50,
                                   needs_review=needs_review)
    return MedicalRequest.objects.get(pk=medical_request.pk)


def test_acknowledge_answers_with_the_time_taken(dispatcher):
    medical_request = classified(0)
    result = board_actions.perform(dispatcher, {"type": "acknowledge", "request_id": medical_request.pk})
    assert result["ok"] and result["message"].startswith(f"Request {medical_request.pk} acknowledged after")
    again = board_actions.perform(dispatcher, {"type": "acknowledge", "request_id": medical_request.pk})
    assert not again["ok"] and "already acknowledged" in again["message"]


@pytest.mark.parametrize("request_id", [None, "7", True, 0, -3])
def test_a_malformed_request_id_gets_a_clear_message(dispatcher, request_id):
    result = board_actions.perform(dispatcher, {"type": "acknowledge", "request_id": request_id})
    assert not result["ok"] and "Name the request" in result["message"]


def test_confirm_and_change_go_through_the_audited_override_and_need_a_supervisor(dispatcher, supervisor):
    unsure = classified(2, needs_review=True)
    refused = board_actions.perform(dispatcher, {"type": "confirm_urgency", "request_id": unsure.pk})
    assert not refused["ok"] and "supervisors" in refused["message"]
    confirmed = board_actions.perform(supervisor, {"type": "confirm_urgency", "request_id": unsure.pk})
    assert confirmed["ok"], confirmed
    assert not MedicalRequest.objects.get(pk=unsure.pk).needs_review

    no_reason = board_actions.perform(supervisor, {"type": "change_urgency", "request_id": unsure.pk, "urgency": 1})
    assert not no_reason["ok"] and "reason" in no_reason["message"]
    bad_level = board_actions.perform(supervisor, {"type": "change_urgency", "request_id": unsure.pk, "urgency": 9,
                                                   "reason": "x"})
    assert not bad_level["ok"] and "Choose a level" in bad_level["message"]
    changed = board_actions.perform(supervisor, {"type": "change_urgency", "request_id": unsure.pk, "urgency": 1,
                                                 "reason": "speaking in single words"})
    assert changed["ok"], changed
    assert [(o.old_urgency, o.new_urgency) for o in UrgencyOverride.objects.order_by("id")] == [(2, 2), (2, 1)]
    assert MedicalRequest.objects.get(pk=unsure.pk).alerted_at is not None  # raised to 1: now an alert


async def test_a_dispatcher_acknowledges_over_the_board_socket(dispatcher):
    medical_request = await database_sync_to_async(classified)(0)
    comm = communicator(dispatcher, "/ws/board/?delta=1")
    assert (await comm.connect())[0]
    board = (await receive_until(comm, of_type("board")))["board"]
    assert [row["id"] for row in board["alerts"]] == [medical_request.pk]
    assert board["alerts"][0]["alert"]["target_s"] == 30.0 and board["alerts"][0]["alert"]["acknowledged_ts"] is None
    await comm.send_json_to({"type": "acknowledge", "request_id": medical_request.pk})
    result = await receive_until(comm, of_type("result"))
    assert result["ok"] and result["action"] == "acknowledge"
    delta = await receive_until(comm, lambda m: m["type"] == "board.delta" and m.get("alerts") == [])
    row = next(r for r in delta["upsert"] if r["id"] == medical_request.pk)
    assert row["alert"]["acknowledged_by"] == dispatcher.username
    assert await database_sync_to_async(AlertAcknowledgement.objects.count)() == 1
    await comm.disconnect()


async def test_an_anonymous_user_cannot_open_the_socket_to_acknowledge():
    medical_request = await database_sync_to_async(classified)(0)
    comm = communicator(AnonymousUser())
    connected, code = await comm.connect()
    assert not connected and code == 4403
    assert await database_sync_to_async(AlertAcknowledgement.objects.filter(request=medical_request).count)() == 0


async def test_a_dispatcher_removed_from_the_group_after_connecting_is_refused(dispatcher):
    medical_request = await database_sync_to_async(classified)(1)
    comm = communicator(dispatcher)
    await comm.connect()
    await receive_until(comm, of_type("charts"))
    await database_sync_to_async(dispatcher.groups.clear)()
    await comm.send_json_to({"type": "acknowledge", "request_id": medical_request.pk})
    # rights are read afresh for each frame: the socket closes instead of acting (tests/dispatch/test_revocation.py)
    output = await comm.receive_output(timeout=3)
    while output["type"] == "websocket.send":
        assert '"result"' not in output["text"]
        output = await comm.receive_output(timeout=3)
    assert output == {"type": "websocket.close", "code": 4403}
    assert await database_sync_to_async(AlertAcknowledgement.objects.count)() == 0
    await comm.disconnect()


@pytest.mark.parametrize("reason", [5, ["fell"], {"why": "fell"}, "4 ycnegru\u202e", "x" * 2001])
async def test_a_bad_reason_over_the_socket_gets_a_clear_refusal_and_the_socket_stays_usable(supervisor, reason):
    medical_request = await database_sync_to_async(classified)(2)
    comm = communicator(supervisor)
    assert (await comm.connect())[0]
    await receive_until(comm, of_type("charts"))
    await comm.send_json_to({"type": "change_urgency", "request_id": medical_request.pk, "urgency": 1,
                             "reason": reason})
    result = await receive_until(comm, of_type("result"))
    assert not result["ok"] and result["action"] == "change_urgency"
    assert any(words in result["message"] for words in ("must be text", "text-direction", "too long"))
    await comm.send_json_to({"type": "refresh"})
    assert (await receive_until(comm, of_type("board")))["board"] is not None
    assert await database_sync_to_async(UrgencyOverride.objects.count)() == 0
    await comm.disconnect()


def test_alerts_queue_most_urgent_first_then_oldest(dispatcher):
    first_one = classified(1, "short of breath")
    zero = classified(0, "not breathing")
    second_one = classified(1, "chest pain")
    classified(3, "sprain")
    assert [row["id"] for row in selectors.board_snapshot()["alerts"]] == [zero.pk, first_one.pk, second_one.pk]
    alerts.acknowledge(zero.pk, user=dispatcher)
    assert [row["id"] for row in selectors.board_snapshot()["alerts"]] == [first_one.pk, second_one.pk]


def test_rows_carry_their_target_and_state(settings):
    settings.TRIAGE_FIRST_TOKEN_TARGETS_S = (2.0, 10.0, 60.0, 300.0, 900.0)
    medical_request = classified(1)
    MedicalRequest.objects.filter(pk=medical_request.pk).update(created_at=timezone.now() - timezone.timedelta(seconds=8))
    row = selectors.board_snapshot()["open"][0]
    assert (row["first_token_target_s"], row["target_state"]) == (10.0, "near")
    MedicalRequest.objects.filter(pk=medical_request.pk).update(created_at=timezone.now() - timezone.timedelta(seconds=11))
    assert selectors.board_snapshot()["open"][0]["target_state"] == "over"


def test_charts_report_attainment_and_time_to_acknowledge(dispatcher):
    now = timezone.now()
    fast = classified(0)
    MedicalRequest.objects.filter(pk=fast.pk).update(first_token_at=fast.created_at + timezone.timedelta(seconds=1))
    slow = classified(0)
    MedicalRequest.objects.filter(pk=slow.pk).update(first_token_at=slow.created_at + timezone.timedelta(seconds=5))
    waiting = classified(0)  # no first token yet, already 4 s over its 2 s target: a miss counted now
    MedicalRequest.objects.filter(pk=waiting.pk).update(created_at=now - timezone.timedelta(seconds=6))
    alerts.acknowledge(fast.pk, user=dispatcher)
    charts = selectors.charts_snapshot()
    assert charts["attainment"][0] == {"within": 1, "total": 3, "share": 1 / 3}
    assert charts["attainment"][4]["total"] == 0
    assert sum(charts["acknowledge"]["0"]["n"]) == 1
    assert charts["window_start_ts"] < charts["generated_ts"]


def test_a_worker_inside_a_long_step_is_busy_not_silent():
    WorkerHeartbeat.objects.create(worker_name="w", queue_order=[], stats={"tokens_per_second": 3.0})
    WorkerHeartbeat.objects.filter(worker_name="w").update(updated_at=timezone.now() - timezone.timedelta(seconds=30))
    assert selectors.board_snapshot()["worker"]["state"] == "silent"
    record_busy("w", 31.5)
    worker = selectors.board_snapshot()["worker"]
    assert worker["state"] == "busy" and worker["alive"]
    assert worker["stats"] == {"tokens_per_second": 3.0, "step_running_s": 31.5}
