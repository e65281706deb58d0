"""ASGI entry point: HTTP through Django, websockets through Channels, sessions for both."""
import logging
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triage_site.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from triage_site import checks  # noqa: E402
from triage_site.dispatch.routing import websocket_urlpatterns  # noqa: E402

# daphne runs no system checks: say here what `manage.py check` would.
for warning in checks.debug_with_a_real_database():
    logging.getLogger(__name__).warning("%s %s", warning.msg, warning.hint)

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
})
