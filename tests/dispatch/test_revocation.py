"""An open socket ends when its user's rights do: deactivation, removal from the group, sign-out.

The check itself (permissions.is_still_dispatcher) is a plain function, tested first; then the board and request
sockets through the real ASGI application, with a real session cookie, as a browser opens them.
"""
import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.test import Client

from triage_site.asgi import application
from triage_site.dispatch import hub
from triage_site.intake.models import MedicalRequest, Status
from triage_site.live import events
from triage_site.permissions import is_still_dispatcher

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://127.0.0.1:8000")
FORBIDDEN = 4403


def signed_in(user):
    """A test client signed in as `user`, and its session key."""
    client = Client()
    client.force_login(user)
    return client, client.cookies[django_settings.SESSION_COOKIE_NAME].value


def deactivate(user):
    user.is_active = False
    user.save()


# --- the check -------------------------------------------------------------------------------------------------

def test_a_signed_in_dispatcher_is_still_entitled(dispatcher):
    _, session_key = signed_in(dispatcher)
    assert is_still_dispatcher(dispatcher.pk, session_key)
    assert is_still_dispatcher(dispatcher.pk)  # no session to check: the user alone


@pytest.mark.parametrize("change", [deactivate, lambda user: user.groups.clear()])
def test_a_deactivated_or_removed_dispatcher_is_not(dispatcher, change):
    _, session_key = signed_in(dispatcher)
    change(dispatcher)
    assert not is_still_dispatcher(dispatcher.pk, session_key)
    assert not is_still_dispatcher(dispatcher.pk)


def test_signing_out_or_changing_the_password_ends_the_session(dispatcher):
    client, session_key = signed_in(dispatcher)
    client.logout()
    assert not is_still_dispatcher(dispatcher.pk, session_key)
    _, other_key = signed_in(dispatcher)
    dispatcher.set_password("a different horse")
    dispatcher.save()
    assert not is_still_dispatcher(dispatcher.pk, other_key)


def test_a_session_counts_only_for_its_own_user(dispatcher, supervisor):
    _, supervisors_key = signed_in(supervisor)
    assert not is_still_dispatcher(dispatcher.pk, supervisors_key)
    assert not is_still_dispatcher(dispatcher.pk, "")  # a session that signs no one in
    assert not is_still_dispatcher(None, supervisors_key)


# --- the sockets -----------------------------------------------------------------------------------------------

async def open_socket(user, path):
    client, session_key = await sync_to_async(signed_in)(user)
    cookie = (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={session_key}".encode())
    comm = WebsocketCommunicator(application, path, headers=[ORIGIN, cookie])
    connected, code = await comm.connect(timeout=5)
    assert connected, code
    assert (await comm.receive_json_from(timeout=5))["type"] in ("board", "request")
    return comm, client


async def close_code(comm, timeout=5.0):
    """Read what the socket sends until it closes; the close code."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        output = await comm.receive_output(timeout=max(deadline - loop.time(), 0.01))
        if output["type"] == "websocket.close":
            return output.get("code")


async def new_request():
    return await database_sync_to_async(MedicalRequest.objects.create)(text="fell", status=Status.QUEUED, urgency=2)


async def request_data_after_close_is_not_sent(comm, request_id):
    """Changes on the board and on the request, and an answer being written: nothing reaches a closed socket."""
    await database_sync_to_async(events.publish_request_changed)(request_id)
    await database_sync_to_async(events.publish_answer_delta)(request_id, text="secret", generated_tokens=1,
                                                              offset=0)
    assert await comm.receive_nothing(timeout=1.5)  # the board sends a tick or more every second to its members


@pytest.mark.parametrize("revoke", [deactivate, lambda user: user.groups.clear()])
async def test_the_board_closes_for_a_dispatcher_who_loses_the_right_and_the_others_stay(
        revoke, dispatcher, supervisor, settings):
    settings.TRIAGE_SOCKET_RECHECK_S = 0.2
    medical_request = await new_request()
    revoked, _ = await open_socket(dispatcher, "/ws/board/?delta=1")
    staying, _ = await open_socket(supervisor, "/ws/board/?delta=1")
    board_hub = hub.hub_for_loop()
    assert len(board_hub.consumers) == 2
    await database_sync_to_async(revoke)(dispatcher)
    assert await close_code(revoked) == FORBIDDEN
    assert len(board_hub.consumers) == 1  # dropped from the shared feed
    await request_data_after_close_is_not_sent(revoked, medical_request.pk)
    assert (await staying.receive_json_from(timeout=3))["type"] in ("board", "board.delta", "tick", "charts")
    await revoked.disconnect()
    await staying.disconnect()


async def test_a_request_page_closes_for_a_dispatcher_removed_from_the_group(dispatcher, settings):
    settings.TRIAGE_SOCKET_RECHECK_S = 0.2
    medical_request = await new_request()
    comm, _ = await open_socket(dispatcher, f"/ws/requests/{medical_request.pk}/")
    await database_sync_to_async(dispatcher.groups.clear)()
    assert await close_code(comm) == FORBIDDEN
    await request_data_after_close_is_not_sent(comm, medical_request.pk)
    await comm.disconnect()


@pytest.mark.parametrize("path", ["/ws/board/?delta=1", "/ws/requests/{pk}/"])
async def test_signing_out_closes_the_sessions_sockets_at_once(path, dispatcher, settings):
    settings.TRIAGE_SOCKET_RECHECK_S = 600  # only the sign-out can close it within the test
    medical_request = await new_request()
    comm, client = await open_socket(dispatcher, path.format(pk=medical_request.pk))
    await sync_to_async(client.logout)()
    assert await close_code(comm, timeout=3) == FORBIDDEN
    await request_data_after_close_is_not_sent(comm, medical_request.pk)
    await comm.disconnect()


async def test_a_session_ended_without_a_sign_out_is_noticed_by_the_periodic_check(dispatcher, settings):
    settings.TRIAGE_SOCKET_RECHECK_S = 0.2
    medical_request = await new_request()
    comm, _ = await open_socket(dispatcher, f"/ws/requests/{medical_request.pk}/")
    await database_sync_to_async(Session.objects.all().delete)()  # expired and cleared, or deleted by an admin
    assert await close_code(comm) == FORBIDDEN
    await comm.disconnect()


@pytest.mark.parametrize("path", ["/ws/board/", "/ws/requests/{pk}/"])
async def test_a_message_from_a_dispatcher_who_lost_the_right_closes_the_socket(path, dispatcher, settings):
    settings.TRIAGE_SOCKET_RECHECK_S = 600  # only the check on the message can close it within the test
    medical_request = await new_request()
    comm, _ = await open_socket(dispatcher, path.format(pk=medical_request.pk))
    await database_sync_to_async(deactivate)(dispatcher)
    await comm.send_json_to({"type": "refresh"})
    assert await close_code(comm, timeout=3) == FORBIDDEN
    await comm.disconnect()
