"""Bad messages on every websocket the server accepts: a clear error, the socket stays usable, no crash.

Each hypothesis example opens a fresh WebsocketCommunicator on the consumer (scope["user"] set, as the
session middleware would), sends one hostile frame, then checks that a valid {"type": "refresh"} still
gets its answer. A consumer that raises ends the communicator's application future, which makes the
next receive raise: that is a crash, and fails the example.
"""
import asyncio
import json

import pytest
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from triage_site.dispatch.consumers import DispatcherConsumer, RequestConsumer
from triage_site.dispatch.routing import websocket_urlpatterns
from triage_site.intake.models import MedicalRequest, Status

from .strategies import binary_frames, deep_json, huge_text, json_messages, not_json_text

pytestmark = pytest.mark.django_db(transaction=True)
WS_FUZZ = settings(max_examples=30, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                          HealthCheck.data_too_large])
KINDS = ["board", "request"]
FIRST = {"board": "board", "request": "request"}

def test_every_routed_consumer_is_covered():
    routed = {pattern.callback.consumer_class for pattern in websocket_urlpatterns}
    assert routed == {DispatcherConsumer, RequestConsumer}, "a new consumer needs bad-input tests here"


@pytest.fixture
def medical_request():
    return MedicalRequest.objects.create(text="<b>fell</b>", status=Status.QUEUED, urgency=2)


def communicator(kind, user, pk=None):
    if kind == "board":
        comm = WebsocketCommunicator(DispatcherConsumer.as_asgi(), "/ws/board/")
        comm.scope["url_route"] = {"kwargs": {}}
    else:
        comm = WebsocketCommunicator(RequestConsumer.as_asgi(), f"/ws/requests/{pk}/")
        comm.scope["url_route"] = {"kwargs": {"pk": pk}}
    comm.scope["user"] = user
    return comm


async def receive_until(comm, predicate, timeout=5.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        message = await comm.receive_json_from(timeout=max(deadline - loop.time(), 0.01))
        if predicate(message):
            return message


async def open_socket(kind, user, pk):
    comm = communicator(kind, user, pk)
    connected, code = await comm.connect(timeout=5)
    assert connected, code
    await receive_until(comm, lambda m: m.get("type") == FIRST[kind])
    return comm


async def still_answers_refresh(comm, kind):
    await comm.send_json_to({"type": "refresh"})
    message = await receive_until(comm, lambda m: m.get("type") in (FIRST[kind], "error"))
    assert message["type"] == FIRST[kind], message


async def check_json_message(kind, user, pk, content):
    comm = await open_socket(kind, user, pk)
    try:
        await comm.send_to(text_data=json.dumps(content))
        if isinstance(content, dict) and content.get("type") == "refresh":
            await receive_until(comm, lambda m: m.get("type") == FIRST[kind])
        else:
            error = await receive_until(comm, lambda m: m.get("type") == "error")
            assert "refresh" in error["message"]
        await still_answers_refresh(comm, kind)
    finally:
        await comm.disconnect()


async def check_raw_frame(kind, user, pk, text=None, data=None):
    comm = await open_socket(kind, user, pk)
    try:
        if text is not None:
            await comm.send_to(text_data=text)
        else:
            await comm.send_to(bytes_data=data)
        error = await receive_until(comm, lambda m: m.get("type") == "error")
        assert error["message"]
        await still_answers_refresh(comm, kind)
    finally:
        await comm.disconnect()


@pytest.mark.parametrize("kind", KINDS)
@WS_FUZZ
@given(content=json_messages)
@example(content={"type": "refresh", "id": "'; DROP TABLE intake_medicalrequest; --"})
@example(content={"type": "<script>alert(1)</script>"})
@example(content={"type": ["refresh"]})
@example(content=[{"type": "refresh"}])
@example(content=None)
@example(content=2**200)
@example(content={"type": "request_changed"})
@example(content={"type": "x" * 100_000})
async def test_any_json_message_gets_an_answer_and_the_socket_stays_usable(kind, dispatcher, medical_request,
                                                                          content):
    await check_json_message(kind, dispatcher, medical_request.pk, content)


@pytest.mark.parametrize("kind", KINDS)
async def test_json_that_names_a_handler_cannot_call_it(kind, dispatcher, medical_request):
    # Channels dispatches channel-layer events by "type"; frames from the browser must never reach them.
    for handler in ("request.changed", "answer.delta", "worker.stats", "websocket.disconnect", "board.delta"):
        await check_json_message(kind, dispatcher, medical_request.pk,
                                 {"type": handler, "text": "forged", "generated_tokens": 1})


@pytest.mark.parametrize("kind", KINDS)
@WS_FUZZ
@given(text=st.one_of(not_json_text, huge_text, deep_json))
@example(text="not json")
async def test_text_frames_that_are_not_json_get_a_clear_error(kind, dispatcher, medical_request, text):
    await check_raw_frame(kind, dispatcher, medical_request.pk, text=text)


@pytest.mark.parametrize("kind", KINDS)
@WS_FUZZ
@given(data=binary_frames)
@example(data=b"\xff\xfe")
async def test_binary_frames_get_a_clear_error(kind, dispatcher, medical_request, data):
    await check_raw_frame(kind, dispatcher, medical_request.pk, data=data)


@pytest.mark.parametrize("kind", KINDS)
async def test_huge_valid_json_is_answered(kind, dispatcher, medical_request):
    await check_json_message(kind, dispatcher, medical_request.pk, {"type": "refresh", "pad": "a" * 1_000_000})
    await check_json_message(kind, dispatcher, medical_request.pk, {"type": "nope", "pad": ["a"] * 100_000})


@pytest.mark.parametrize("pk", [0, 987654, 2**31, 2**63 - 1, 2**63, 10**30])
async def test_nonexistent_request_id_does_not_crash(dispatcher, pk):
    comm = communicator("request", dispatcher, pk)
    connected, _ = await comm.connect(timeout=5)
    assert connected
    first = await comm.receive_json_from(timeout=5)
    assert first == {"type": "error", "message": f"There is no request {pk}."}  # nothing leaks
    assert (await comm.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4404}


async def test_nonexistent_request_id_gets_a_clear_message(dispatcher):
    comm = communicator("request", dispatcher, 987654)
    connected, code = await comm.connect(timeout=5)
    if not connected:
        assert code == 4404
        return
    first = await comm.receive_json_from(timeout=5)
    await comm.disconnect()
    assert first["type"] == "error" and "987654" in first["message"]


async def test_board_query_string_garbage_is_ignored(dispatcher):
    for query in (b"delta=%ff%fe", b"delta=1&delta=0", b"\x00\xff=\xff", b"delta=" + b"1" * 100_000):
        comm = WebsocketCommunicator(DispatcherConsumer.as_asgi(), "/ws/board/?" + query.decode("latin-1"))
        comm.scope["user"] = dispatcher
        comm.scope["query_string"] = query
        comm.scope["url_route"] = {"kwargs": {}}
        connected, _ = await comm.connect(timeout=5)
        assert connected, query
        assert (await receive_until(comm, lambda m: m.get("type") == "board"))["board"] is not None
        await comm.disconnect()

