from django.apps import AppConfig


class DispatchConfig(AppConfig):
    name = "triage_site.dispatch"
    label = "dispatch"
    verbose_name = "Dispatch"
