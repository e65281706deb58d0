"""Production settings pass `check --deploy`; secrets and passwords come only from the environment."""
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEV_KEY = "insecure-development-key-only-for-debug-mode"


def production_env(**overrides):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_", "TRIAGE_TEST_DB"))}
    env.update(DJANGO_DEBUG="0", DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DJANGO_ALLOWED_HOSTS="triage.example",
               DJANGO_SETTINGS_MODULE="triage_site.settings")
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def manage(*args, env):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def load_settings(env):
    code = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_check_deploy_passes_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_turning_hsts_preload_off_is_reported_by_check_deploy():
    """Preloading is hard to undo for a whole domain, so an operator may turn it off; the check says so."""
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(DJANGO_HSTS_PRELOAD="0"))
    assert result.returncode != 0
    assert "security.W021" in result.stdout + result.stderr


def test_check_deploy_fails_with_debug_on():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(DJANGO_DEBUG="1"))
    assert result.returncode != 0 and "DEBUG" in result.stdout + result.stderr


@pytest.mark.parametrize("key", [None, "", "   "])
def test_debug_off_without_a_secret_key_refuses_to_start(key):
    result = load_settings(production_env(DJANGO_SECRET_KEY=key))
    if key == "   ":  # whitespace is "set": Django starts, but check --deploy must refuse such a key
        deploy = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(DJANGO_SECRET_KEY=key))
        assert deploy.returncode != 0 and "SECRET_KEY" in deploy.stdout + deploy.stderr
        return
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off." in result.stderr


def test_the_dev_key_is_only_used_with_debug_on():
    debug = load_settings(production_env(DJANGO_DEBUG="1", DJANGO_SECRET_KEY=None))
    assert debug.returncode == 0 and debug.stdout.strip() == DEV_KEY
    given = load_settings(production_env())
    assert given.returncode == 0 and given.stdout.strip() != DEV_KEY
    # someone pasting the dev key into production is caught by check --deploy (security.W009)
    pasted = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(DJANGO_SECRET_KEY=DEV_KEY))
    assert pasted.returncode != 0 and "W009" in pasted.stdout + pasted.stderr


def test_production_settings_are_secure_by_default():
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
            "s.SECURE_HSTS_SECONDS > 0, s.SESSION_COOKIE_HTTPONLY, s.ALLOWED_HOSTS)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=production_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.strip() == "False True True True True True ['triage.example']", result.stderr


SECRET_PATTERNS = [
    re.compile(r"""(?i)\b(password|passwd|pwd|secret(_key)?|api_?key|token)\b["']?\s*[:=]\s*["'][^"'\s${}]{6,}["']"""),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
    re.compile(r"\bsk-[A-Za-z0-9]{20,}\b"),
    re.compile(r"(?i)\b(postgres(ql)?|redis|amqp)://[^/\s:@]+:(?!\$\{)[^/\s@]+@"),  # credentials in a URL
]
# The documented debug-only development key (settings.py, used only when DEBUG is on: see the test above).
ALLOWED = {("triage_site/settings.py", DEV_KEY)}


def tracked_text_files():
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in names.decode().split("\0"):
        # test fixtures' throw-away passwords (e.g. "correct horse battery") are not secrets
        if not name or name.startswith("tests/"):
            continue
        path = ROOT / name
        try:
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            continue
        if b"\0" in data[:8192] or len(data) > 5_000_000:
            continue
        yield name, data.decode("utf-8", "replace")


def test_no_hard_coded_secrets_in_tracked_files():
    found = []
    for name, text in tracked_text_files():
        for number, line in enumerate(text.splitlines(), 1):
            for pattern in SECRET_PATTERNS:
                if pattern.search(line) and not any(name == n and allowed in line for n, allowed in ALLOWED):
                    found.append(f"{name}:{number}: {line.strip()[:120]}")
    assert not found, "\n".join(found)


def test_settings_read_secrets_only_from_the_environment():
    source = (ROOT / "triage_site/settings.py").read_text()
    assert 'SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")' in source
    assert source.count(DEV_KEY) == 1
    assert re.search(r"if not SECRET_KEY:\n    if not DEBUG:\n        raise RuntimeError", source)
    assert "PASSWORD" not in source.replace("AUTH_PASSWORD_VALIDATORS", "").replace("password_validation", "")


def test_compose_has_no_default_passwords():
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"PASSWORD:-[^}]+}", text)
