from django.urls import path

from apps.accounts import views_reauth

app_name = "security"

urlpatterns = [
    path("reauth/", views_reauth.reauth, name="reauth"),
]
