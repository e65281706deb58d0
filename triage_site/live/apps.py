from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "triage_site.live"
    label = "live"
    verbose_name = "Live updates"
