from django.urls import path

from apps.accounts.oidc import views

app_name = "oidc"

urlpatterns = [
    path("authenticate/", views.Authenticate.as_view(), name="authenticate"),
    path("callback/", views.Callback.as_view(), name="callback"),
]
