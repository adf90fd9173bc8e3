"""Log pages, under /observability/logs/ in the "observability" namespace. Every page takes the search's GET
parameters (see forms.LogSearchForm); none takes a path parameter."""

from django.urls import path

from apps.observability.logs import views

urlpatterns: list = [
    path("", views.logs_search, name="logs_search"),
    path("results/", views.logs_results, name="logs_results"),
    path("histogram/", views.logs_histogram, name="logs_histogram"),
    path("context/", views.logs_context, name="logs_context"),
    path("tail/", views.logs_tail, name="logs_tail"),
    path("download/", views.logs_download, name="logs_download"),
]
