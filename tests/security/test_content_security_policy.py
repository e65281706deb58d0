"""Only our own script files run: the pages send a Content-Security-Policy without inline script, and the
templates hold no inline script or event handler that such a policy would block."""
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

TEMPLATES = Path(settings.BASE_DIR) / "templates"
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)


@pytest.mark.django_db
def test_pages_send_a_policy_that_runs_no_inline_script(supervisor_client):
    for client, url in ((Client(), reverse("login")), (supervisor_client, reverse("dispatch:board")),
                        (supervisor_client, reverse("simulation:index"))):
        policy = client.get(url)["Content-Security-Policy"]
        script_src = re.search(r"script-src ([^;]*)", policy).group(1).split()
        assert script_src == ["'self'"], (url, policy)
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy


def test_templates_hold_no_inline_script_or_event_handler():
    found = [(path.name, match.group(0)) for path in TEMPLATES.rglob("*.html")
             for pattern in (INLINE_HANDLER, INLINE_SCRIPT) for match in pattern.finditer(path.read_text())]
    assert found == []


def test_the_policy_can_be_turned_off(settings, client):
    settings.TRIAGE_CONTENT_SECURITY_POLICY = ""
    assert not client.get(reverse("login")).has_header("Content-Security-Policy")
