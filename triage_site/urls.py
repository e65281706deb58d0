from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from triage_site.sign_in import SignInForm

urlpatterns = [
    path("", include("triage_site.intake.urls")),
    path("dispatch/", include("triage_site.dispatch.urls")),
    path("simulation/", include("triage_site.simulation.urls")),
    path("login/", auth_views.LoginView.as_view(authentication_form=SignInForm), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
