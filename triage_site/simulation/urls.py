from django.urls import path

from . import views

app_name = "simulation"
urlpatterns = [
    path("", views.index, name="index"),
    path("replay/", views.replay, name="replay"),
    path("runs/<int:run_id>/", views.detail, name="detail"),
    path("runs/<int:run_id>/status.json", views.status, name="status"),
    path("runs/<int:run_id>/results.csv", views.results_csv, name="results_csv"),
    path("runs/<int:run_id>/results.json", views.results_json, name="results_json"),
]
