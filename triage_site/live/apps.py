from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "triage_site.live"
    label = "live"
    verbose_name = "Live updates"

    def ready(self):
        from triage_site import checks  # noqa: F401  (registers the deployment checks)
