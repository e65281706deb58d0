"""Bad input on every form and JSON endpoint: a clear error, nothing stored, never a 500.

Property-based (hypothesis): each example is one POST through the real view with the test client, which
re-raises any exception from a view, so a 500 fails the test with its traceback. The tests run inside one
database transaction (`django_db` without transaction=True), so `on_commit` work (classification, simulation
runs) never starts: these tests check what the form accepts and stores, nothing downstream.
"""
from urllib.parse import quote_from_bytes

import pytest
from django.db import connection
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from triage_site.intake.models import MedicalRequest, Status, UrgencyOverride
from triage_site.simulation.models import SimulationRun

from .strategies import (HTML_AND_SCRIPT, SQL_LOOKING, any_text, control_text, hostile_text,
                         wrong_type_values)

pytestmark = pytest.mark.django_db
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow,
                                                                      HealthCheck.data_too_large])
SMALL_FUZZ = settings(FUZZ, max_examples=30)


def has_control(value):
    return any(ord(ch) < 32 and ch not in "\n\r\t" for ch in value)


def text_problem(value, max_length, required):
    """What Django's CharField(strip=True) + our control-character validator says about `value`, or None."""
    value = value.strip()
    if not value:
        return "required" if required else None
    if len(value) > max_length:
        return "max_length"
    if "\x00" in value or has_control(value):
        return "control"
    return None


def intake_problems(data):
    problems = {
        "text": text_problem(data["text"], 4000, True),
        "caller_name": text_problem(data["caller_name"], 200, False),
        "location": text_problem(data["location"], 300, False),
    }
    number = data["callback_number"].strip()
    if number and (len(number) > 40 or "\x00" in number
                   or not all(ch in "0123456789+()-. " for ch in number) or len(number) < 3):
        problems["callback_number"] = "invalid"
    return {name: problem for name, problem in problems.items() if problem}


INTAKE_MESSAGES = {
    "required": ["Describe the medical situation (1 to 4,000 characters)."],
    "max_length": ["The description is too long: at most 4,000 characters"],
    "control": ["control characters"],
}
OTHER_MESSAGES = {
    "max_length": ["Ensure this value has at most"],
    "control": ["control characters", "Null characters are not allowed"],
    "invalid": ["Enter a phone number", "Ensure this value has at most"],
}

optional_value = st.one_of(st.just(""), any_text, control_text, st.sampled_from(SQL_LOOKING + HTML_AND_SCRIPT),
                           st.builds(lambda n: "9" * n, st.sampled_from([2, 3, 40, 41, 301])))
unknown_fields = st.dictionaries(st.sampled_from(["status", "urgency", "id", "answer", "created_by", "is_staff",
                                                  "csrfmiddlewaretoken", "text[]", "__proto__", "x" * 300]),
                                 st.one_of(any_text, wrong_type_values), max_size=3)


@FUZZ
@given(text=hostile_text, caller_name=optional_value, callback_number=st.one_of(optional_value, wrong_type_values),
       location=optional_value, extra=unknown_fields)
@example(text="'; DROP TABLE intake_medicalrequest; --", caller_name="", callback_number="", location="", extra={})
@example(text="x" * 4000, caller_name="", callback_number="", location="", extra={})
@example(text="x" * 4001, caller_name="", callback_number="", location="", extra={})
@example(text="bleeding\x00badly", caller_name="", callback_number="", location="", extra={})
@example(text="fall", caller_name="", callback_number="+44 (0)20 7946-0000", location="",
         extra={"status": "done", "urgency": "0", "answer": "forged"})
def test_intake_form_never_500_and_stores_exactly_what_it_accepts(dispatcher_client, text, caller_name,
                                                                 callback_number, location, extra):
    data = {**extra, "text": text, "caller_name": caller_name, "callback_number": callback_number,
            "location": location}
    before = set(MedicalRequest.objects.values_list("pk", flat=True))
    response = dispatcher_client.post(reverse("intake:submit"), data)
    after = MedicalRequest.objects.exclude(pk__in=before)
    problems = intake_problems(data)
    if problems:
        assert response.status_code == 200, problems
        page = response.content.decode()
        assert 'role="alert"' in page
        for field, problem in problems.items():
            expected = INTAKE_MESSAGES[problem] if field == "text" else OTHER_MESSAGES[problem]
            assert any(message in page for message in expected), (field, problem)
        assert not after.exists()
    else:
        assert response.status_code == 302
        stored = after.get()
        assert response["Location"] == reverse("intake:detail", args=[stored.pk])
        assert stored.text == text.strip()
        assert (stored.caller_name, stored.callback_number, stored.location) == (
            caller_name.strip(), callback_number.strip(), location.strip())
        # Unknown fields never reach the model: a new request is always received, unclassified, unanswered.
        assert stored.status == Status.RECEIVED and stored.urgency is None and stored.answer == ""


def test_sql_looking_text_is_stored_verbatim_and_the_table_survives(dispatcher_client):
    for text in SQL_LOOKING:
        assert dispatcher_client.post(reverse("intake:submit"), {"text": text}).status_code == 302
    assert list(MedicalRequest.objects.order_by("pk").values_list("text", flat=True)) == SQL_LOOKING
    assert "intake_medicalrequest" in connection.introspection.table_names()


def test_html_is_stored_as_typed_and_escaped_on_every_page(dispatcher_client):
    for text in HTML_AND_SCRIPT:
        response = dispatcher_client.post(reverse("intake:submit"), {"text": text, "location": text}, follow=True)
        assert response.status_code == 200
        assert "<script>" not in response.content.decode().split("</header>")[-1] or "<script>" not in text
    assert set(MedicalRequest.objects.values_list("text", flat=True)) == set(HTML_AND_SCRIPT)
    page = dispatcher_client.get(reverse("dispatch:board")).content.decode()
    for text in HTML_AND_SCRIPT:
        if "<" in text:
            assert text not in page


@SMALL_FUZZ
@given(raw=st.binary(max_size=300))
@example(raw=b"\xff\xfe\xfd chest pain")
@example(raw=b"\xed\xa0\x80 lone surrogate as UTF-8")
@example(raw=b"\xc0\xaf overlong slash")
@example(raw=b"\x00\x00")
def test_invalid_utf8_is_replaced_never_500(dispatcher_client, raw):
    before = MedicalRequest.objects.count()
    body = b"text=" + quote_from_bytes(raw, safe="").encode() + b"&location=" + quote_from_bytes(raw[:50]).encode()
    response = dispatcher_client.generic("POST", reverse("intake:submit"), body,
                                         content_type="application/x-www-form-urlencoded")
    decoded = raw.decode("utf-8", "replace")
    expected_ok = not text_problem(decoded, 4000, True) and not text_problem(raw[:50].decode("utf-8", "replace"),
                                                                            300, False)
    if expected_ok:
        assert response.status_code == 302
        stored = MedicalRequest.objects.latest("pk")
        assert stored.text == decoded.strip()
    else:
        assert response.status_code == 200
        assert 'role="alert"' in response.content.decode()
        assert MedicalRequest.objects.count() == before


def test_a_body_that_is_not_form_data_is_a_clear_error(dispatcher_client):
    for content_type, body in [("application/json", b'{"text": "collapsed"}'), ("text/plain", b"text=collapsed"),
                               ("multipart/form-data; boundary=zz", b"--zz\r\nbroken"),
                               ("application/x-www-form-urlencoded", b"%%%&&&==="),
                               ("application/x-www-form-urlencoded", b"text=" + b"a" * 200_000)]:
        response = dispatcher_client.generic("POST", reverse("intake:submit"), body, content_type=content_type)
        assert response.status_code in (200, 400), (content_type, response.status_code)
        if response.status_code == 200:
            assert 'role="alert"' in response.content.decode()
    assert not MedicalRequest.objects.exists()


def test_many_form_fields_are_refused_not_a_crash(dispatcher_client):
    body = "&".join(f"f{i}=1" for i in range(1500)) + "&text=fall"
    response = dispatcher_client.generic("POST", reverse("intake:submit"), body.encode(),
                                         content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400  # Django's DATA_UPLOAD_MAX_NUMBER_FIELDS (1000)
    assert not MedicalRequest.objects.exists()


# --- urgency override (supervisor) ---------------------------------------------------------------

@pytest.fixture
def open_request():
    return MedicalRequest.objects.create(text="fell on the stairs", status=Status.QUEUED, urgency=2)


@FUZZ
@given(new_urgency=st.one_of(wrong_type_values, st.sampled_from(["0", "1", "2", "3", "4"]), any_text),
       reason=st.one_of(hostile_text, st.sampled_from(["checked with caller", "  ", "x" * 2001])),
       extra=unknown_fields)
@example(new_urgency="0", reason="'; DROP TABLE intake_urgencyoverride; --", extra={})
@example(new_urgency="9", reason="fine", extra={})
@example(new_urgency="1", reason="ok\x00", extra={"request": "1", "changed_by": "1"})
def test_override_form_never_500(supervisor_client, supervisor, open_request, new_urgency, reason, extra):
    open_request.refresh_from_db()
    before = UrgencyOverride.objects.count()
    response = supervisor_client.post(reverse("intake:override", args=[open_request.pk]),
                                      {**extra, "new_urgency": new_urgency, "reason": reason})
    assert response.status_code == 302
    assert response["Location"] == reverse("intake:detail", args=[open_request.pk])
    page = supervisor_client.get(response["Location"]).content.decode()
    valid = (new_urgency in ("0", "1", "2", "3", "4") and int(new_urgency) != open_request.urgency
             and not text_problem(reason, 2000, True))
    if valid:
        made = UrgencyOverride.objects.latest("pk")
        assert UrgencyOverride.objects.count() == before + 1
        assert (made.new_urgency, made.reason, made.changed_by) == (int(new_urgency), reason.strip(), supervisor)
        assert "changed" in page
    else:
        assert UrgencyOverride.objects.count() == before
        assert 'class="message error"' in page, page[-2000:]


@pytest.mark.parametrize("pk", [0, 987654, 2**31, 2**63 - 1])
def test_override_of_a_missing_request_is_a_message(supervisor_client, pk):
    response = supervisor_client.post(reverse("intake:override", args=[pk]), {"new_urgency": "0", "reason": "r"},
                                      follow=True)
    assert response.status_code == 200
    assert f"There is no request {pk}." in response.content.decode()


def test_override_needs_post(supervisor_client, open_request):
    assert supervisor_client.get(reverse("intake:override", args=[open_request.pk])).status_code == 405


@FUZZ
@given(phrase=st.one_of(hostile_text, st.sampled_from(["%", "%%%", "___", "\\\\\\", "' OR '1'='1", "fell"])),
       new_urgency=st.one_of(wrong_type_values, st.sampled_from(["0", "1"])),
       reason=st.sampled_from(["", "mass casualty", "\x00", "x" * 2001]), confirm=st.sampled_from(["", "on", "x"]))
@example(phrase="%%%", new_urgency="0", reason="mass casualty", confirm="on")
@example(phrase="___", new_urgency="0", reason="mass casualty", confirm="on")
def test_bulk_raise_form_never_500_and_wildcards_are_literal(supervisor_client, open_request, phrase, new_urgency,
                                                            reason, confirm):
    MedicalRequest.objects.filter(pk=open_request.pk).update(urgency=2)
    before = UrgencyOverride.objects.count()
    response = supervisor_client.post(reverse("intake:bulk_raise"), {"phrase": phrase, "new_urgency": new_urgency,
                                                                     "reason": reason, "confirm": confirm})
    assert response.status_code in (200, 302)
    stripped = phrase.strip()
    valid = (not text_problem(phrase, 200, True) and len(stripped) >= 3 and new_urgency in ("0", "1")
             and not text_problem(reason, 2000, True))
    if not valid:
        assert response.status_code == 200
        assert "errorlist" in response.content.decode()
        assert UrgencyOverride.objects.count() == before
    elif stripped.lower() not in open_request.text.lower():  # the only open request's text is ASCII
        assert UrgencyOverride.objects.count() == before


# --- login form ------------------------------------------------------------------------------------

@pytest.mark.parametrize("length", [256, 4000])
def test_login_with_a_very_long_username_is_not_a_500(client, dispatcher, length):
    response = client.post(reverse("login"), {"username": "u" * length, "password": "wrong"})
    assert response.status_code == 200
    assert "Ensure this value has at most 150 characters" in response.content.decode()


@FUZZ
@given(username=st.one_of(hostile_text, st.just("dispatcher1")).filter(lambda u: len(u.strip()) <= 255), password=st.one_of(hostile_text, st.just("")),
       extra=unknown_fields, agent=st.one_of(st.just("Mozilla/5.0"), st.text(max_size=400).filter(
           lambda s: "\x00" not in s)))
def test_login_form_never_500_and_never_signs_in_with_a_wrong_password(client, dispatcher, username, password,
                                                                      extra, agent):
    response = client.post(reverse("login"), {**extra, "username": username, "password": password},
                           HTTP_USER_AGENT=agent)
    assert response.status_code in (200, 429)  # 429: the axes lockout page
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("username", ["", "nul\x00name", "dispatcher1"])
def test_login_with_invalid_fields_says_what_is_wrong(client, username):
    response = client.post(reverse("login"), {"username": username, "password": ""})
    assert response.status_code == 200
    page = response.content.decode()
    assert "errorlist" in page


# --- simulation forms and JSON endpoints -----------------------------------------------------------

SMALL_RUN = {"policies": ["fcfs", "semantic"], "setting": "A100_4B", "user_request_gap": "1",
             "max_concurrent_user_requests": "3", "gap_num": "4", "batch_size": "4", "token_budget": "2048",
             "priority_error_rate": "0.2", "priority_error_distance": "1", "length_error_rate": "0.2",
             "length_error_distance": "0.5", "classifier_latency": "0.003", "classifier_batch_size": "5",
             "aging_bound": "2", "preemption": "on", "seeds": "0,1"}
REPLAY = {k: v for k, v in SMALL_RUN.items() if k in ("setting", "batch_size", "token_budget", "classifier_latency",
                                                       "classifier_batch_size", "aging_bound", "preemption")}
REPLAY.update(start="2026-11-01T00:00", end="2026-11-02T00:00")
hostile_value = st.one_of(wrong_type_values, hostile_text, st.lists(wrong_type_values, max_size=3))


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(sorted(SMALL_RUN) + ["unknown", "created_by", "status", "result"]),
                               hostile_value, min_size=1, max_size=4))
@example(changes={"seeds": "0-99999999999999999999"})
@example(changes={"seeds": "-5--1"})
@example(changes={"user_request_gap": "inf"})
@example(changes={"gap_num": "99999999999999999999999"})
@example(changes={"policies": ["'; DROP TABLE simulation_simulationrun; --"]})
@example(changes={"status": "done", "result": "{}"})
def test_synthetic_simulation_form_never_500(dispatcher_client, changes):
    before = SimulationRun.objects.count()
    response = dispatcher_client.post(reverse("simulation:index"), {**SMALL_RUN, **changes})
    assert response.status_code in (302, 400)
    if response.status_code == 400:
        assert 'class="error' in response.content.decode()
        assert SimulationRun.objects.count() == before
    else:
        run = SimulationRun.objects.latest("pk")
        assert run.status == SimulationRun.Status.PENDING and run.result is None  # unknown fields ignored
        assert set(run.policies) <= {"fcfs", "sjf", "pjf", "semantic"}


@SMALL_FUZZ
@given(changes=st.dictionaries(st.sampled_from(sorted(REPLAY) + ["trace", "unknown"]),
                               st.one_of(hostile_value, st.sampled_from(["2026-13-45T99:99", "0001-01-01T00:00",
                                                                         "9999-12-31T23:59", "yesterday"])),
                               min_size=1, max_size=3))
def test_replay_form_never_500(dispatcher_client, changes):
    before = SimulationRun.objects.count()
    response = dispatcher_client.post(reverse("simulation:replay"), {**REPLAY, **changes})
    # No requests were recorded in any window here, so every submission is refused with a reason.
    assert response.status_code == 400
    assert 'class="error' in response.content.decode()
    assert SimulationRun.objects.count() == before


@pytest.mark.parametrize("name", ["simulation:detail", "simulation:status", "simulation:results_csv",
                                  "simulation:results_json", "intake:detail"])
@pytest.mark.parametrize("pk", [0, 123456, 2**31, 2**63 - 1, 2**63, 10**30])
def test_unknown_ids_are_404_never_500(dispatcher_client, name, pk):
    kwarg = "pk" if name.startswith("intake") else "run_id"
    assert dispatcher_client.get(reverse(name, kwargs={kwarg: pk})).status_code == 404


def test_status_json_of_a_run_that_is_not_finished(dispatcher_client, dispatcher):
    run = SimulationRun.objects.create(params={}, policies=["fcfs"], seeds=[0], created_by=dispatcher)
    response = dispatcher_client.get(reverse("simulation:status", args=[run.pk]))
    assert response.status_code == 200 and response.json()["status"] == "pending"
    for name in ("simulation:results_csv", "simulation:results_json"):  # no result yet: 404, not a crash
        assert dispatcher_client.get(reverse(name, args=[run.pk])).status_code == 404


@pytest.mark.parametrize("path", ["/requests/-1/", "/requests/abc/", "/simulation/runs/1.5/status.json",
                                  "/simulation/runs/%00/", "/requests/1/override/%ff/", "/" + "a" * 5000])
def test_malformed_paths_are_404(dispatcher_client, path):
    assert dispatcher_client.get(path).status_code == 404


def test_wrong_methods_are_405(dispatcher_client):
    for name in ("simulation:status", "simulation:results_json"):
        url = reverse(name, args=[1])
        assert dispatcher_client.post(url).status_code == 405
        assert dispatcher_client.delete(url).status_code == 405


@pytest.mark.parametrize("missed", ["under", "", "x" * 5000, "\x00", "'; --"])
def test_overrides_filter_with_odd_query(supervisor_client, missed):
    assert supervisor_client.get(reverse("intake:overrides"), {"missed": missed}).status_code == 200

