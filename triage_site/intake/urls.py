from django.urls import path

from . import views

app_name = "intake"
urlpatterns = [
    path("", views.submit, name="submit"),
    path("requests/<int:pk>/", views.detail, name="detail"),
]
