from django.apps import AppConfig


class IntakeConfig(AppConfig):
    name = "triage_site.intake"
    label = "intake"
    verbose_name = "Intake"
