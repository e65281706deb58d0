from django.contrib import admin

from .models import MedicalRequest


@admin.register(MedicalRequest)
class MedicalRequestAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "urgency", "needs_review", "created_at", "finished_at")
    list_filter = ("status", "urgency", "needs_review")
    search_fields = ("text", "location", "caller_name")
    readonly_fields = ("created_at", "classified_at", "queued_at", "started_at", "first_token_at", "finished_at")
