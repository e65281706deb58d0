"""Who may see what: every page and every websocket, through the real ASGI application."""
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.urls import reverse

from tests.support.html import external_assets
from triage_site.asgi import application
from triage_site.dispatch.consumers import DispatcherConsumer, RequestConsumer
from triage_site.intake.models import MedicalRequest, Status

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://127.0.0.1:8000")


@pytest.fixture
def outsider(django_user_model):
    return django_user_model.objects.create_user("nurse", password="correct horse battery")


@pytest.fixture
def medical_request():
    return MedicalRequest.objects.create(text="<script>alert(1)</script> fell", status=Status.QUEUED, urgency=2,
                                         classifier_detail={"reasoning": "<img src=x onerror=alert(2)>"})


def pages(medical_request):
    return [reverse("dispatch:board"), reverse("intake:submit"), reverse("intake:detail", args=[medical_request.pk])]


def test_anonymous_users_are_sent_to_sign_in(client, medical_request):
    for url in pages(medical_request):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url


def test_signed_in_users_outside_the_dispatcher_group_are_forbidden(client, outsider, medical_request):
    client.force_login(outsider)
    for url in pages(medical_request):
        assert client.get(url).status_code == 403, url


def test_dispatchers_see_every_page_with_caller_text_escaped(dispatcher_client, medical_request):
    for url in pages(medical_request):
        response = dispatcher_client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert "<script>alert(1)</script>" not in page
        assert "<img src=x" not in page
    detail = dispatcher_client.get(reverse("intake:detail", args=[medical_request.pk])).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; fell" in detail
    assert "&lt;img src=x onerror=alert(2)&gt;" in detail
    assert 'id="timeline"' in detail and 'id="answer"' in detail


def test_board_uses_our_own_plotly_never_a_cdn(dispatcher_client):
    page = dispatcher_client.get(reverse("dispatch:board")).content.decode()
    assert f"{settings.STATIC_URL}plotly/plotly.min.js" in page or "/static/plotly/plotly.min.js" in page
    assert external_assets(page) == [] and "https://" not in page


def test_plotly_is_served_from_static(dispatcher_client):
    response = Client().get("/static/plotly/plotly.min.js")
    assert response.status_code == 200


def bare(consumer, user, path, **route):
    comm = WebsocketCommunicator(consumer.as_asgi(), path)
    comm.scope["user"] = user
    comm.scope["url_route"] = {"kwargs": route}
    return comm


@pytest.mark.parametrize("kind", ["board", "request"])
async def test_consumers_refuse_anonymous_outsiders_and_inactive_users(kind, outsider, dispatcher, medical_request):
    dispatcher.is_active = False
    await sync_to_async(dispatcher.save)()
    for user in (AnonymousUser(), outsider, dispatcher):
        if kind == "board":
            comm = bare(DispatcherConsumer, user, "/ws/board/")
        else:
            comm = bare(RequestConsumer, user, f"/ws/requests/{medical_request.pk}/", pk=medical_request.pk)
        connected, code = await comm.connect()
        assert not connected and code == 4403, user


def session_cookie(user):
    client = Client()
    client.force_login(user)
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode())


@pytest.mark.parametrize("path", ["/ws/board/", "/ws/board/?delta=1", "/ws/requests/{pk}/"])
async def test_real_application_checks_origin_and_session(path, dispatcher, outsider, medical_request):
    path = path.format(pk=medical_request.pk)
    cookie = await sync_to_async(session_cookie)(dispatcher)
    # a foreign page, or no origin at all, is refused even with a dispatcher's session
    for headers in ([(b"origin", b"http://evil.example"), cookie], [cookie]):
        connected, _ = await WebsocketCommunicator(application, path, headers=headers).connect()
        assert not connected, headers
    # our own origin without a session, or with a non-dispatcher's session, is refused
    outsider_cookie = await sync_to_async(session_cookie)(outsider)
    for headers in ([ORIGIN], [ORIGIN, outsider_cookie]):
        connected, code = await WebsocketCommunicator(application, path, headers=headers).connect()
        assert not connected and code == 4403, headers
    # our own origin and a dispatcher's session are let in
    comm = WebsocketCommunicator(application, path, headers=[ORIGIN, cookie])
    connected, _ = await comm.connect()
    assert connected
    message = await comm.receive_json_from(timeout=3)
    assert message["type"] in ("board", "request")
    await comm.disconnect()
