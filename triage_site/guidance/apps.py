from django.apps import AppConfig


class GuidanceConfig(AppConfig):
    name = "triage_site.guidance"
    verbose_name = "Protocol cards and guidance"

    def ready(self):
        from . import selection  # noqa: F401 - a bad card stops the start, naming the card and the fault
