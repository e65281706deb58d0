"""What Django's error reports (the debug page, the error e-mails) may show: never a credential."""
import re

from django.views.debug import SafeExceptionReporterFilter

# The password of a URL: the secret in scheme://user:secret@host/..., e.g. a DATABASE_URL or a REDIS_URL.
_URL_PASSWORD = re.compile(r"(?P<before>\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@", re.I)


class CredentialHidingFilter(SafeExceptionReporterFilter):
    """Django hides settings named like KEY, PASS or TOKEN; ours also hold credentials in URLs (DATABASE_URL,
    REDIS_URL, CELERY_BROKER_URL) and in nested configuration (DATABASES, CHANNEL_LAYERS): hide those by name too,
    and the password of any URL left anywhere else, in settings, request metadata or a traceback's variables."""

    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|CREDENTIAL|PRIVATE|CERT"
        "|URL|URI|DSN|BROKER|BACKEND|CHANNEL|CACHE|DATABASE|REDIS|CONNECTION", flags=re.I)

    def cleanse_setting(self, key, value):
        return self._without_url_passwords(super().cleanse_setting(key, value))

    def get_traceback_frame_variables(self, request, tb_frame):
        return [(name, self._without_url_passwords(value))
                for name, value in super().get_traceback_frame_variables(request, tb_frame)]

    def _without_url_passwords(self, value):
        if issubclass(type(value), str):  # not isinstance: a lazy object passes for a str without being one
            return _URL_PASSWORD.sub(rf"\g<before>{self.cleansed_substitute}@", value)
        return value
