"""Metrics pages, under /observability/metrics/ in the "observability" namespace."""

from django.urls import path, register_converter

from apps.observability.metrics import places, views


class PlaceSlugConverter:
    """The inventory kinds that have charts (``nodes``, ``deployments``...)."""

    regex = "|".join(sorted(places.SLUGS, key=len, reverse=True))

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(PlaceSlugConverter, "placeslug")

urlpatterns: list = [
    path("explore/", views.explorer, name="explorer"),
    path("<int:cluster_id>/", views.cluster_metrics, name="cluster_metrics"),
    path("<int:cluster_id>/apps/<str:namespace>/<str:name>/", views.app_metrics, name="app_metrics"),
    path(
        "<int:cluster_id>/<placeslug:kind_slug>/<str:namespace>/<str:name>/",
        views.resource_metrics,
        name="resource_metrics",
    ),
]
