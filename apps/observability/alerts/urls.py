"""Alert and silence pages, under /observability/alerts/ in the "observability" namespace."""

from django.urls import path

from apps.observability.alerts import views

urlpatterns: list = [
    path("", views.alert_list, name="alert_list"),
    path("counts/", views.alert_counts, name="alert_counts"),
    path("silences/", views.silence_list, name="silence_list"),
    path("silences/<int:cluster_id>/new/", views.silence_create, name="silence_create"),
    path("silences/<int:cluster_id>/<uuid:silence_id>/expire/", views.silence_expire, name="silence_expire"),
]
