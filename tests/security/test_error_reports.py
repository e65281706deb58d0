"""The debug page (on by default for the bare-laptop mode) and error reports never show a credential."""
import sys

import pytest
from django.core import checks
from django.test import RequestFactory, override_settings
from django.views.debug import get_default_exception_reporter_filter, technical_500_response

from triage_site.checks import DEBUG_WITH_A_REAL_DATABASE, debug_with_a_real_database
from triage_site.error_reports import CredentialHidingFilter

PASSWORDS = ("pw-db-1234", "pw-redis-5678", "pw-broker-9012", "pw-elsewhere-3456", "pw-local-7890")
CREDENTIALS = dict(
    DATABASE_URL="postgres://triage:pw-db-1234@db:5432/triage",
    REDIS_URL="redis://:pw-redis-5678@cache:6379/0",
    CELERY_BROKER_URL="redis://default:pw-broker-9012@cache:6379/1",
    CHANNEL_LAYERS={"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                "CONFIG": {"hosts": ["redis://:pw-redis-5678@cache:6379/0"]}}},
    TRIAGE_UPSTREAM={"mirrors": ["amqp://guest:pw-elsewhere-3456@mq//"]},  # a name no pattern hides
)


def test_it_is_the_projects_filter():
    assert isinstance(get_default_exception_reporter_filter(), CredentialHidingFilter)


@override_settings(**CREDENTIALS)
def test_no_setting_shows_a_password():
    shown = repr(CredentialHidingFilter().get_safe_settings())
    assert not [password for password in PASSWORDS if password in shown]
    assert "cache:6379" not in shown  # CHANNEL_LAYERS and the URLs are hidden whole
    assert "mq//" in shown  # elsewhere only the password goes


def fail_with_a_url_in_a_variable():
    url = "postgres://triage:" + "-".join(["pw", "local", "7890"]) + "@db/triage"  # noqa: F841  (a local shown)
    raise RuntimeError("could not connect")


@override_settings(DEBUG=True, **CREDENTIALS)
def test_the_debug_page_shows_no_password():
    # runserver copies the environment into request.META, DATABASE_URL and REDIS_URL with it
    request = RequestFactory().get("/", DATABASE_URL=CREDENTIALS["DATABASE_URL"], REDIS_URL=CREDENTIALS["REDIS_URL"])
    try:
        fail_with_a_url_in_a_variable()
    except RuntimeError:
        page = technical_500_response(request, *sys.exc_info()).content.decode()
    assert "could not connect" in page and "fail_with_a_url_in_a_variable" in page
    assert not [password for password in PASSWORDS if password in page]


@pytest.mark.parametrize("debug, database_url, warned", [
    (True, "postgres://triage@db/triage", True), (False, "postgres://triage@db/triage", False), (True, "", False)])
def test_debug_with_a_real_database_is_a_warning(settings, debug, database_url, warned):
    settings.DEBUG, settings.DATABASE_URL = debug, database_url
    found = debug_with_a_real_database()
    assert [(w.level, w.msg) for w in found] == ([(checks.WARNING, DEBUG_WITH_A_REAL_DATABASE)] if warned else [])
    assert debug_with_a_real_database in checks.registry.registry.get_checks(include_deployment_checks=False)
