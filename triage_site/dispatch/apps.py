from django.apps import AppConfig


class DispatchConfig(AppConfig):
    name = "triage_site.dispatch"
    label = "dispatch"
    verbose_name = "Dispatch"

    def ready(self):
        from django.contrib.auth.signals import user_logged_out

        user_logged_out.connect(close_sockets_of_session, dispatch_uid="dispatch.close_sockets_of_session")


def close_sockets_of_session(sender, request, user, **kwargs):
    """Signing out closes that session's board and request sockets at once."""
    from triage_site.live import events

    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        events.publish_session_ended(session_key)
