from django.contrib import admin

from .models import SimulationRun


@admin.register(SimulationRun)
class SimulationRunAdmin(admin.ModelAdmin):
    list_display = ("id", "source", "status", "progress", "created_by", "created_at", "finished_at")
    list_filter = ("source", "status")
    readonly_fields = ("result", "trace", "trace_notes")
