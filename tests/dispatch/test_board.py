import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from triage_site.asgi import application
from triage_site.dispatch.consumers import DispatcherConsumer, RequestConsumer
from triage_site.dispatch.models import WorkerHeartbeat
from triage_site.dispatch import events
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


def test_board_page_needs_sign_in(client):
    assert client.get(reverse("dispatch:board")).status_code == 302


def test_board_page_lists_open_requests(dispatcher_client):
    MedicalRequest.objects.create(text="<b>bold</b> wheezing child", status=Status.QUEUED, urgency=1)
    page = dispatcher_client.get(reverse("dispatch:board")).content.decode()
    assert "&lt;b&gt;bold&lt;/b&gt; wheezing child" in page


async def test_anonymous_websocket_is_refused():
    comm = communicator(AnonymousUser())
    connected, code = await comm.connect()
    assert not connected
    assert code == 4403


async def test_websocket_with_foreign_origin_is_refused(dispatcher):
    comm = WebsocketCommunicator(application, "/ws/board/", headers=[(b"origin", b"http://evil.example")])
    connected, _ = await comm.connect()
    assert not connected


async def test_board_streams_status_changes_in_scheduler_order(dispatcher):
    first = await database_sync_to_async(MedicalRequest.objects.create)(text="refill", status=Status.QUEUED, urgency=4)
    second = await database_sync_to_async(MedicalRequest.objects.create)(text="arrest", status=Status.QUEUED, urgency=0)
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


async def test_unknown_message_gets_a_clear_error(dispatcher):
    comm = communicator(dispatcher)
    await comm.connect()
    await comm.receive_json_from()
    await comm.send_json_to({"type": "drop table"})
    reply = await comm.receive_json_from()
    assert reply["type"] == "error" and "refresh" in reply["message"]
    await comm.send_json_to({"type": "refresh"})
    assert (await comm.receive_json_from())["type"] == "board"
    await comm.disconnect()


async def test_request_page_streams_answer_deltas(dispatcher):
    medical_request = await database_sync_to_async(MedicalRequest.objects.create)(
        text="bee sting", status=Status.RUNNING, urgency=2)
    comm = communicator(dispatcher, f"/ws/requests/{medical_request.pk}/", RequestConsumer, pk=medical_request.pk)
    await comm.connect()
    snapshot = await comm.receive_json_from()
    assert snapshot["request"]["text"] == "bee sting"
    await database_sync_to_async(events.publish_answer_delta)(medical_request.pk, text="Remove the sting.",
                                                              generated_tokens=4)
    delta = await receive_until(comm, lambda m: m["type"] == "answer.delta")
    assert delta == {"type": "answer.delta", "text": "Remove the sting.", "generated_tokens": 4}
    await comm.disconnect()
