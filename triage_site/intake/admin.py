from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from .models import AlertAcknowledgement, MedicalRequest, UrgencyOverride


class ViewOnlyAdmin(admin.ModelAdmin):
    """Requests and their audit change only through intake, the worker and the audited services (text,
    urgencies, answer, status): the admin shows them and can neither add, edit nor delete them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class UrgencyOverrideInline(admin.TabularInline):
    model = UrgencyOverride
    extra = 0
    can_delete = False
    fields = ("changed_at", "changed_by", "old_urgency", "new_urgency", "reason", "model_urgency", "rule_urgency")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(MedicalRequest)
class MedicalRequestAdmin(ViewOnlyAdmin):
    list_display = ("id", "status", "urgency", "model_urgency", "rule_urgency", "needs_review", "created_at",
                    "override_link")
    list_filter = ("status", "urgency", "needs_review")
    search_fields = ("text", "location", "caller_name")
    inlines = [UrgencyOverrideInline]

    @admin.display(description="Override")
    def override_link(self, obj):
        # Urgency changes go through the audited override form, never a plain edit.
        return format_html('<a href="{}#overrides">change urgency</a>', reverse("intake:detail", args=[obj.pk]))


@admin.register(UrgencyOverride)
class UrgencyOverrideAdmin(ViewOnlyAdmin):
    list_display = ("changed_at", "request", "changed_by", "old_urgency", "new_urgency", "model_urgency", "reason")
    list_filter = ("new_urgency", "model_urgency")
    search_fields = ("reason", "request__text")


@admin.register(AlertAcknowledgement)
class AlertAcknowledgementAdmin(ViewOnlyAdmin):
    list_display = ("acknowledged_at", "request", "urgency", "acknowledged_by", "seconds_to_acknowledge")
    list_filter = ("urgency",)
