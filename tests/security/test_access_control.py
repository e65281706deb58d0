"""Permissions for every view and consumer, CSRF on every form, login throttling.

The URL list is walked from the resolver, so a view added later without protection fails here.
"""
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from triage_site.dispatch.routing import websocket_urlpatterns
from triage_site.intake.models import AlertAcknowledgement, MedicalRequest, Status, UrgencyOverride
from triage_site.simulation.models import SimulationRun

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db
PUBLIC = {"login", "logout"}  # sign-in and sign-out are for everyone
SUPERVISOR_ONLY = {"intake:override", "intake:confirm_urgency", "intake:overrides", "intake:overrides_export",
                   "intake:acknowledgements_export", "intake:bulk_raise"}
# a GET is refused with 405 before anything else
POST_ONLY = {"intake:override", "intake:confirm_urgency", "intake:acknowledge"}
SAMPLE_KWARGS = {"pk": None, "run_id": None}  # filled with real objects' ids by `sample_objects`


def named_patterns(patterns=None, namespace=""):
    """(name, pattern) for every named URL outside admin/, recursively through includes."""
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            if str(entry.pattern) == "admin/":
                continue
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from named_patterns(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern):
            assert entry.name, f"unnamed URL {entry.pattern}: name it so that its protection is tested"
            yield f"{namespace}{entry.name}", entry


@pytest.fixture
def sample_objects(dispatcher):
    request = MedicalRequest.objects.create(text="fell", status=Status.QUEUED, urgency=2)
    run = SimulationRun.objects.create(params={}, policies=["fcfs"], seeds=[0], created_by=dispatcher,
                                       status=SimulationRun.Status.DONE, result={"policies": [], "per_policy": {}})
    return {"pk": request.pk, "run_id": run.pk}


def all_urls(sample_objects):
    urls = []
    for name, pattern in named_patterns():
        kwargs = {key: sample_objects[key] for key in pattern.pattern.converters}
        urls.append((name, reverse(name, kwargs=kwargs)))
    return urls


def state():
    return (MedicalRequest.objects.count(), list(MedicalRequest.objects.values_list("urgency", flat=True)),
            UrgencyOverride.objects.count(), SimulationRun.objects.count(), AlertAcknowledgement.objects.count())


def test_url_list_is_what_these_tests_know():
    names = {name for name, _ in named_patterns()}
    assert PUBLIC | SUPERVISOR_ONLY <= names
    assert len(names) >= 13


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_users_are_sent_to_sign_in_everywhere(client, sample_objects, method):
    before = state()
    for name, url in all_urls(sample_objects):
        if name in PUBLIC:
            continue
        response = getattr(client, method)(url)
        if response.status_code == 405:  # a POST-only view refuses the method before anything else
            continue
        assert response.status_code == 302, (name, method, response.status_code)
        assert response["Location"].startswith(reverse("login") + "?next="), name
    assert state() == before


@pytest.mark.parametrize("method", ["get", "post"])
def test_signed_in_users_outside_the_dispatcher_group_are_forbidden_everywhere(client, outsider, sample_objects,
                                                                              method):
    client.force_login(outsider)
    before = state()
    for name, url in all_urls(sample_objects):
        if name in PUBLIC:
            continue
        status = getattr(client, method)(url).status_code
        assert status in (403, 405) if name in POST_ONLY else status == 403, (name, method, status)
    assert state() == before


def test_override_refuses_outsiders_by_post(client, outsider, sample_objects):
    client.force_login(outsider)
    url = reverse("intake:override", args=[sample_objects["pk"]])
    assert client.post(url, {"new_urgency": "0", "reason": "r"}).status_code == 403


def test_dispatchers_are_refused_supervisor_pages(dispatcher_client, sample_objects):
    before = state()
    for name, url in all_urls(sample_objects):
        if name in SUPERVISOR_ONLY:
            data = {"new_urgency": "0", "reason": "r", "phrase": "fell", "confirm": "on"}
            assert dispatcher_client.post(url, data).status_code == 403, name
            if name not in POST_ONLY:
                assert dispatcher_client.get(url).status_code == 403, name
        elif name not in PUBLIC | POST_ONLY:
            assert dispatcher_client.get(url).status_code == 200, name
    assert state() == before


def test_supervisors_reach_supervisor_pages(supervisor_client, sample_objects):
    for name in SUPERVISOR_ONLY - POST_ONLY:
        assert supervisor_client.get(reverse(name)).status_code == 200, name


def test_inactive_dispatcher_is_refused(client, dispatcher, sample_objects):
    client.force_login(dispatcher)
    dispatcher.is_active = False
    dispatcher.save()
    for name, url in all_urls(sample_objects):
        if name not in PUBLIC:
            response = client.post(url) if name in POST_ONLY else client.get(url)
            assert response.status_code in (302, 403), name


@pytest.mark.parametrize("who", ["anonymous", "outsider", "dispatcher"])
def test_admin_needs_staff(client, who, outsider, dispatcher):
    if who != "anonymous":
        client.force_login(outsider if who == "outsider" else dispatcher)
    for url in ("/admin/", "/admin/intake/medicalrequest/", "/admin/auth/user/", "/admin/simulation/simulationrun/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), (who, url)


def test_admin_is_open_to_superusers(client, superuser):
    client.force_login(superuser)
    assert client.get("/admin/").status_code == 200


def test_the_admin_shows_requests_but_cannot_add_change_or_delete_them(client, superuser):
    """Audited fields (text, urgencies, answer, status) change only through the services and their audit."""
    request = MedicalRequest.objects.create(text="fell", status=Status.QUEUED, urgency=2)
    client.force_login(superuser)
    page = client.get(f"/admin/intake/medicalrequest/{request.pk}/change/")
    assert page.status_code == 200 and 'name="text"' not in page.content.decode()
    client.post(f"/admin/intake/medicalrequest/{request.pk}/change/",
                {"text": "changed", "status": Status.DONE, "answer": "edited"})
    assert client.get("/admin/intake/medicalrequest/add/").status_code == 403
    assert client.post(f"/admin/intake/medicalrequest/{request.pk}/delete/", {"post": "yes"}).status_code == 403
    client.post("/admin/intake/medicalrequest/", {"action": "delete_selected", "_selected_action": [request.pk],
                                                  "post": "yes"})
    request.refresh_from_db()
    assert (request.text, request.status, request.answer) == ("fell", Status.QUEUED, "")


def test_a_refusal_says_which_group_is_needed_and_whom_to_ask(client, outsider, sample_objects):
    client.force_login(outsider)
    page = client.get(reverse("intake:detail", args=[sample_objects["pk"]]))
    assert page.status_code == 403
    text = page.content.decode()
    assert "not in the dispatcher group" in text and "create_dispatcher" in text and outsider.username in text


# --- CSRF ------------------------------------------------------------------------------------------

def test_every_post_without_a_csrf_token_is_refused(superuser, sample_objects):
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    session_key = client.session.session_key
    before = state()
    forms = {
        "intake:submit": {"text": "He collapsed"},
        "intake:override": {"new_urgency": "0", "reason": "r"},
        "intake:bulk_raise": {"phrase": "fell", "new_urgency": "0", "reason": "r", "confirm": "on"},
        "simulation:index": {"policies": ["fcfs"], "seeds": "0"},
        "simulation:replay": {"start": "2026-11-01T00:00", "end": "2026-11-02T00:00"},
        "login": {"username": "root", "password": PASSWORD},
        "logout": {},
    }
    urls = all_urls(sample_objects) + [("admin:login", "/admin/login/"), ("admin:logout", "/admin/logout/"),
                                       ("admin:add", "/admin/auth/user/add/")]
    for name, url in urls:
        response = client.post(url, forms.get(name, {}))
        assert response.status_code == 403, (name, response.status_code)
        assert "CSRF" in response.content.decode(), name
    assert set(forms) <= {name for name, _ in urls}
    assert state() == before
    assert client.session.session_key == session_key  # logout without a token did not sign out


def test_forms_carry_a_csrf_token(superuser):
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    for url in (reverse("intake:submit"), reverse("intake:bulk_raise"), reverse("simulation:index"),
                reverse("dispatch:board")):
        page = client.get(url).content.decode()
        if "<form" in page and 'method="post"' in page:
            assert page.count('name="csrfmiddlewaretoken"') >= page.count('method="post"'), url
    anonymous = Client(enforce_csrf_checks=True)
    assert 'name="csrfmiddlewaretoken"' in anonymous.get(reverse("login")).content.decode()


def test_a_post_with_the_token_is_accepted(superuser):
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    client.get(reverse("intake:submit"))
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    response = client.post(reverse("intake:submit"), {"text": "He collapsed", "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and MedicalRequest.objects.count() == 1


# --- login throttling ------------------------------------------------------------------------------

def sign_in(client, username, password, ip="10.0.0.1"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_five_wrong_passwords_lock_the_account_for_this_address(django_user_model, dispatcher):
    django_user_model.objects.create_user("dispatcher2", password=PASSWORD)
    client = Client()
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        response = sign_in(client, "dispatcher1", f"wrong {attempt}")
        assert response.status_code in (200, 429), attempt
        assert "_auth_user_id" not in client.session
    locked = sign_in(client, "dispatcher1", PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # another user from the same address still signs in
    other = sign_in(Client(), "dispatcher2", PASSWORD)
    assert other.status_code == 302 and other["Location"] == reverse("dispatch:board")
    # the same user from another address still signs in (lockout is per username and address)
    assert sign_in(Client(), "dispatcher1", PASSWORD, ip="10.0.0.2").status_code == 302


def test_four_wrong_passwords_do_not_lock(dispatcher):
    client = Client()
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, "dispatcher1", f"wrong {attempt}").status_code == 200
    assert sign_in(client, "dispatcher1", PASSWORD).status_code == 302


def test_throttling_settings():
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"
    assert settings.AXES_FAILURE_LIMIT == 5 and settings.AXES_COOLOFF_TIME == 0.25
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"


# --- websockets ------------------------------------------------------------------------------------

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def ws_paths(pk):
    paths = []
    for pattern in websocket_urlpatterns:
        route = str(pattern.pattern)
        paths.append("/" + route.replace("<int:pk>", str(pk)))
    assert paths and all("<" not in p for p in paths), paths
    return paths


def session_cookie(user):
    client = Client()
    client.force_login(user)
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode())


@pytest.mark.django_db(transaction=True)
async def test_every_consumer_refuses_anonymous_outsiders_and_foreign_origins(dispatcher, outsider):
    from triage_site.asgi import application

    request = await sync_to_async(MedicalRequest.objects.create)(text="fell", status=Status.QUEUED, urgency=2)
    good = await sync_to_async(session_cookie)(dispatcher)
    bad = await sync_to_async(session_cookie)(outsider)
    for path in ws_paths(request.pk):
        for headers in ([ORIGIN], [ORIGIN, bad], [ORIGIN, (b"cookie", b"sessionid=forged")]):
            connected, code = await WebsocketCommunicator(application, path, headers=headers).connect(timeout=5)
            assert not connected and code == 4403, (path, headers)
        for origin in (b"http://evil.example", b"null", b"http://127.0.0.1.evil.example", b"https://localhost.evil"):
            comm = WebsocketCommunicator(application, path, headers=[(b"origin", origin), good])
            connected, _ = await comm.connect(timeout=5)
            assert not connected, (path, origin)
        comm = WebsocketCommunicator(application, path, headers=[ORIGIN, good])
        connected, _ = await comm.connect(timeout=5)
        assert connected, path
        await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_unknown_websocket_paths_are_refused(dispatcher):
    from triage_site.asgi import application

    good = await sync_to_async(session_cookie)(dispatcher)
    for path in ("/ws/", "/ws/requests/abc/", "/ws/requests/-1/", "/ws/admin/", "/ws/board/extra/"):
        comm = WebsocketCommunicator(application, path, headers=[ORIGIN, good])
        try:
            connected, _ = await comm.connect(timeout=5)
        except ValueError:  # URLRouter: "No route found for path" closes the socket
            connected = False
        assert not connected, path


@pytest.mark.django_db(transaction=True)
async def test_consumers_refuse_a_user_without_scope(dispatcher):
    from triage_site.dispatch.consumers import DispatcherConsumer

    for user in (None, AnonymousUser()):
        comm = WebsocketCommunicator(DispatcherConsumer.as_asgi(), "/ws/board/")
        if user is not None:
            comm.scope["user"] = user
        comm.scope["url_route"] = {"kwargs": {}}
        connected, code = await comm.connect(timeout=5)
        assert not connected and code == 4403
