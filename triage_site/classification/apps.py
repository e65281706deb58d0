from django.apps import AppConfig


class ClassificationConfig(AppConfig):
    name = "triage_site.classification"
    label = "classification"
    verbose_name = "Classification"
