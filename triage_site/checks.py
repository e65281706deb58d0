"""Deployment checks Django's own do not make; `manage.py check` runs them, and the ASGI server logs them at start."""
from django.conf import settings
from django.core import checks

DEBUG_WITH_A_REAL_DATABASE = "DEBUG is on with a real database: set DJANGO_DEBUG=0 for any deployment."


@checks.register(checks.Tags.security)
def debug_with_a_real_database(app_configs=None, **kwargs):
    """Debug mode is the bare-laptop default; with DATABASE_URL set this is a real stack, where debug pages show
    code, settings and requests to anyone who makes one fail."""
    if not (settings.DEBUG and settings.DATABASE_URL):
        return []
    return [checks.Warning(DEBUG_WITH_A_REAL_DATABASE, id="triage.W001", hint=(
        "Also set DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS; behind plain HTTP (a demo on 127.0.0.1), "
        "DJANGO_SECURE_COOKIES=0 DJANGO_SSL_REDIRECT=0 DJANGO_HSTS_SECONDS=0 (README.md, full stack)."))]
