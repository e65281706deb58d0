"""The board and request websockets, with Channels' WebsocketCommunicator."""
import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import reverse
from django.utils import timezone

from triage_site.dispatch import hub
from triage_site.live import events
from triage_site.dispatch.consumers import DispatcherConsumer, RequestConsumer
from triage_site.dispatch.models import WorkerHeartbeat
from triage_site.intake import services
from triage_site.intake.models import MedicalRequest, Status

pytestmark = pytest.mark.django_db(transaction=True)


def communicator(user, path="/ws/board/", consumer=DispatcherConsumer, **route):
    app = consumer.as_asgi()
    comm = WebsocketCommunicator(app, path)
    comm.scope["user"] = user
    comm.scope["url_route"] = {"kwargs": route}
    return comm


async def receive_until(comm, predicate, timeout=3.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        message = await comm.receive_json_from(timeout=max(remaining, 0.01))
        if predicate(message):
            return message


def of_type(kind):
    return lambda message: message["type"] == kind


create = database_sync_to_async(MedicalRequest.objects.create)


def test_board_page_needs_sign_in(client):
    assert client.get(reverse("dispatch:board")).status_code == 302


def test_board_page_lists_open_requests(dispatcher_client):
    MedicalRequest.objects.create(text="<b>bold</b> wheezing child", status=Status.QUEUED, urgency=1)
    page = dispatcher_client.get(reverse("dispatch:board")).content.decode()
    assert "&lt;b&gt;bold&lt;/b&gt; wheezing child" in page
    assert "<b>bold</b>" not in page


def test_board_page_marks_requests_awaiting_confirmation_with_a_text_badge(dispatcher_client):
    flagged = MedicalRequest.objects.create(text="unsure", status=Status.QUEUED, urgency=2, needs_review=True)
    MedicalRequest.objects.create(text="sure", status=Status.QUEUED, urgency=2)
    page = dispatcher_client.get(reverse("dispatch:board")).content.decode()
    badge = f'<a class="badge review-badge" href="{reverse("intake:detail", args=[flagged.pk])}#confirm-urgency">' \
            "Confirm urgency</a>"
    assert page.count(badge) == 1 and page.count("review-badge") == 1
    assert "(needs review)" not in page


async def test_board_streams_status_changes_in_scheduler_order(dispatcher):
    first = await create(text="refill", status=Status.QUEUED, urgency=4)
    second = await create(text="arrest", status=Status.QUEUED, urgency=0)
    await database_sync_to_async(WorkerHeartbeat.objects.create)(worker_name="w", queue_order=[second.pk, first.pk])
    comm = communicator(dispatcher)
    connected, _ = await comm.connect()
    assert connected
    board = (await comm.receive_json_from())["board"]
    assert [row["id"] for row in board["open"]] == [second.pk, first.pk]
    assert [row["queue_position"] for row in board["open"]] == [1, 2]

    await database_sync_to_async(services.mark_running)(second.pk, prompt_tokens=5)
    update = await receive_until(comm, lambda m: m["type"] == "board" and m["board"]["open"][0]["status"] == "running")
    assert update["board"]["open"][0]["id"] == second.pk
    await comm.disconnect()


async def test_board_sends_charts_after_the_snapshot(dispatcher):
    comm = communicator(dispatcher)
    await comm.connect()
    assert (await comm.receive_json_from())["type"] == "board"
    charts = (await comm.receive_json_from())
    assert charts["type"] == "charts"
    assert set(charts["charts"]) >= {"waiting", "ttft", "queue", "tokens"}
    assert set(charts["charts"]["queue"]["by_class"]) == {"0", "1", "2", "3", "4"}
    await comm.disconnect()


async def test_unknown_message_gets_a_clear_error(dispatcher):
    comm = communicator(dispatcher)
    await comm.connect()
    await receive_until(comm, of_type("charts"))
    await comm.send_json_to({"type": "drop table"})
    reply = await receive_until(comm, lambda m: m["type"] in ("error", "board"))
    assert reply["type"] == "error" and "refresh" in reply["message"]
    await comm.send_json_to({"type": "refresh"})
    assert (await receive_until(comm, of_type("board")))["type"] == "board"
    await comm.disconnect()


async def test_delta_mode_sends_only_changed_rows_with_versions(dispatcher):
    quiet = await create(text="sprained ankle", status=Status.QUEUED, urgency=3)
    comm = communicator(dispatcher, "/ws/board/?delta=1")
    await comm.connect()
    full = await receive_until(comm, of_type("board"))
    version = full["version"]
    assert [row["id"] for row in full["board"]["open"]] == [quiet.pk]

    arrival = await create(text="not breathing", status=Status.RECEIVED)
    await database_sync_to_async(events.publish_request_changed)(arrival.pk)
    delta = await receive_until(comm, of_type("board.delta"))
    assert delta["base"] == version and delta["version"] == version + 1
    assert [row["id"] for row in delta["upsert"]] == [arrival.pk]
    assert set(delta["open"]) == {quiet.pk, arrival.pk}
    await comm.disconnect()


async def test_rows_that_only_move_in_the_queue_travel_as_position_pairs(dispatcher):
    first = await create(text="refill", status=Status.QUEUED, urgency=4)
    second = await create(text="sprain", status=Status.QUEUED, urgency=3)
    heartbeat = await database_sync_to_async(WorkerHeartbeat.objects.create)(
        worker_name="w", queue_order=[first.pk, second.pk])
    comm = communicator(dispatcher, "/ws/board/?delta=1")
    await comm.connect()
    full = await receive_until(comm, of_type("board"))
    assert [row["queue_position"] for row in full["board"]["open"]] == [1, 2]

    heartbeat.queue_order = [second.pk, first.pk]
    await database_sync_to_async(heartbeat.save)()
    await database_sync_to_async(events.publish_request_changed)(first.pk)
    delta = await receive_until(comm, lambda m: m["type"] == "board.delta" and "positions" in m)
    assert delta["upsert"] == []
    assert sorted(delta["positions"]) == sorted([[first.pk, 2], [second.pk, 1]])
    assert delta["open"] == [second.pk, first.pk]
    await comm.send_json_to({"type": "refresh"})  # a full board agrees with what the pairs said
    refreshed = await receive_until(comm, of_type("board"))
    assert [(row["id"], row["queue_position"]) for row in refreshed["board"]["open"]] == [(second.pk, 1), (first.pk, 2)]
    await comm.disconnect()


async def test_idle_board_sends_ticks_so_a_dead_connection_is_noticed(dispatcher):
    comm = communicator(dispatcher, "/ws/board/?delta=1")
    await comm.connect()
    full = await receive_until(comm, of_type("board"))
    tick = await receive_until(comm, of_type("tick"), timeout=hub.KEEPALIVE_INTERVAL + 2)
    assert tick["version"] == full["version"]
    await comm.disconnect()


async def test_many_dashboards_share_one_database_read_per_change(dispatcher):
    comms = [communicator(dispatcher, "/ws/board/?delta=1") for _ in range(5)]
    for comm in comms:
        await comm.connect()
        await receive_until(comm, of_type("board"))
    feed = hub.hub_for_loop()
    assert len(feed.consumers) == 5
    reads_before = feed.reads
    arrival = await create(text="chest pain", status=Status.RECEIVED)
    await database_sync_to_async(events.publish_request_changed)(arrival.pk)
    for comm in comms:
        delta = await receive_until(comm, of_type("board.delta"))
        assert delta["upsert"][0]["id"] == arrival.pk
    assert feed.reads - reads_before <= 2  # one for the change, maybe one keep-alive
    for comm in comms:
        await comm.disconnect()
    assert hub.hub_for_loop() is not feed  # the feed stopped with its last dashboard


async def test_reconnect_catches_up_from_the_database(dispatcher):
    comm = communicator(dispatcher, "/ws/board/?delta=1")
    await comm.connect()
    await receive_until(comm, of_type("board"))
    await comm.disconnect()
    # While nobody is connected a request arrives and its event goes nowhere.
    missed = await create(text="missed while offline", status=Status.QUEUED, urgency=2)
    await database_sync_to_async(events.publish_request_changed)(missed.pk)
    comm = communicator(dispatcher, "/ws/board/?delta=1")
    await comm.connect()
    full = await receive_until(comm, of_type("board"))
    assert missed.pk in [row["id"] for row in full["board"]["open"]]
    await comm.disconnect()


async def test_worker_stats_reach_the_board(dispatcher):
    comm = communicator(dispatcher, "/ws/board/?delta=1")
    await comm.connect()
    await receive_until(comm, of_type("charts"))
    await database_sync_to_async(events.publish_worker_stats)({"tokens_per_second": 12.5, "at": 1.0})
    worker = await receive_until(comm, of_type("worker"))
    assert worker["stats"]["tokens_per_second"] == 12.5
    await comm.disconnect()


async def test_request_page_streams_answer_deltas(dispatcher):
    medical_request = await create(text="bee sting", status=Status.RUNNING, urgency=2)
    comm = communicator(dispatcher, f"/ws/requests/{medical_request.pk}/", RequestConsumer, pk=medical_request.pk)
    await comm.connect()
    snapshot = await comm.receive_json_from()
    assert snapshot["request"]["text"] == "bee sting"
    await database_sync_to_async(events.publish_answer_delta)(medical_request.pk, text="Remove the sting.",
                                                              generated_tokens=4, offset=0)
    delta = await receive_until(comm, of_type("answer.delta"))
    assert delta == {"type": "answer.delta", "text": "Remove the sting.", "generated_tokens": 4, "offset": 0}
    await database_sync_to_async(events.publish_answer_delta)(medical_request.pk, text=" Cool it.",
                                                              generated_tokens=7, offset=17)
    delta = await receive_until(comm, of_type("answer.delta"))
    assert delta["offset"] == len("Remove the sting.")
    await comm.disconnect()


async def test_request_snapshot_has_timeline_and_classifier_reasoning(dispatcher):
    now = timezone.now()
    medical_request = await create(
        text="fell off a ladder", status=Status.DONE, urgency=1, created_at=now, classified_at=now, queued_at=now,
        first_token_at=now, finished_at=now, answer="Keep still.",
        classifier_detail={"reasoning": "Red flags: <fall from height>.", "probabilities": [0.1, 0.6, 0.2, 0.05, 0.05],
                           "rules_fired": ["fall"]},
    )
    comm = communicator(dispatcher, f"/ws/requests/{medical_request.pk}/", RequestConsumer, pk=medical_request.pk)
    await comm.connect()
    snapshot = (await comm.receive_json_from())["request"]
    assert [item["key"] for item in snapshot["timeline"]] == ["received", "classified", "queued", "first_token",
                                                              "finished"]
    assert all(item["ts"] for item in snapshot["timeline"])
    assert snapshot["classifier"]["reasoning"] == "Red flags: <fall from height>."
    assert [p["probability"] for p in snapshot["classifier"]["probabilities"]] == [0.1, 0.6, 0.2, 0.05, 0.05]
    assert {"key": "rules fired", "value": "fall"} in snapshot["classifier"]["facts"]
    # the page keeps itself fresh without being asked
    again = await receive_until(comm, of_type("request"), timeout=2.5)
    assert again["request"]["answer"] == "Keep still."
    await comm.send_json_to({"type": "nonsense"})
    assert (await receive_until(comm, of_type("error")))["type"] == "error"
    await comm.disconnect()
