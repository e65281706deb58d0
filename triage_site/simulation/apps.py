from django.apps import AppConfig


class SimulationConfig(AppConfig):
    name = "triage_site.simulation"
    label = "simulation"
    verbose_name = "Simulation replay"
