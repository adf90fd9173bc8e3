"""Trace pages, under /observability/traces/ in the "observability" namespace: the search and the service graph
take GET parameters (see forms.TraceSearchForm), a trace its cluster and id."""

from django.urls import path

from apps.observability.traces import views

urlpatterns: list = [
    path("", views.trace_search, name="trace_search"),
    path("dependencies/", views.trace_dependencies, name="trace_dependencies"),
    path("<int:cluster_id>/<str:trace_id>/", views.trace_detail, name="trace_detail"),
]
