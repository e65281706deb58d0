from django.urls import path

app_name = "simulation"
urlpatterns: list[path] = []
