from django.urls import path

from . import views

app_name = "intake"
urlpatterns = [
    path("", views.submit, name="submit"),
    path("requests/<int:pk>/", views.detail, name="detail"),
    path("requests/<int:pk>/override/", views.override, name="override"),
    path("requests/<int:pk>/confirm-urgency/", views.confirm_urgency, name="confirm_urgency"),
    path("requests/<int:pk>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("overrides/acknowledgements.jsonl", views.acknowledgements_export, name="acknowledgements_export"),
    path("overrides/", views.overrides_index, name="overrides"),
    path("overrides/export.jsonl", views.overrides_export, name="overrides_export"),
    path("overrides/bulk/", views.bulk_raise, name="bulk_raise"),
]
