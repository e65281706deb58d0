"""Pages with patient data are never kept by the browser; static files keep their own caching."""
import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse

from triage_site.intake.models import MedicalRequest, Status
from triage_site.middleware import forbid_caching_for_signed_in_users

pytestmark = pytest.mark.django_db


def test_pages_for_a_signed_in_user_are_not_stored(supervisor_client):
    medical_request = MedicalRequest.objects.create(text="fell", status=Status.QUEUED, urgency=2)
    for url in (reverse("dispatch:board"), reverse("intake:detail", args=[medical_request.pk]),
                reverse("intake:overrides_export")):
        response = supervisor_client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"], url


def test_anonymous_responses_and_static_files_are_left_alone(supervisor_client):
    assert "no-store" not in Client().get(reverse("dispatch:board")).get("Cache-Control", "")
    static = supervisor_client.get("/static/plotly/plotly.min.js")
    assert static.status_code == 200 and "no-store" not in static.get("Cache-Control", "")


def test_a_response_that_sets_its_own_cache_control_keeps_it(supervisor):
    request = RequestFactory().get("/")
    request.user = supervisor
    response = HttpResponse("chart")
    response["Cache-Control"] = "private, max-age=60"
    forbid_caching_for_signed_in_users(request, response)
    assert response["Cache-Control"] == "private, max-age=60"
    request.user = AnonymousUser()
    bare = HttpResponse("sign in")
    forbid_caching_for_signed_in_users(request, bare)
    assert not bare.has_header("Cache-Control")
    request.user = supervisor
    forbid_caching_for_signed_in_users(request, bare)
    assert "no-store" in bare["Cache-Control"]
