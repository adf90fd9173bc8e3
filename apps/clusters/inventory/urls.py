"""URL patterns for the cluster inventory pages; joined into the "clusters" namespace by urls.py."""

from django.urls import path, register_converter

from apps.clusters.inventory.pages import detail, listing, overview
from apps.clusters.kinds import KINDS


class KindSlugConverter:
    """Only the inventory's kinds (``pods``, ``deployments``...), so other cluster pages keep their paths."""

    regex = "|".join(sorted((k.plural for k in KINDS), key=len, reverse=True))

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(KindSlugConverter, "kindslug")

urlpatterns: list = [
    path("<int:cluster_id>/", overview.cluster_overview, name="cluster_overview"),
    path("<int:cluster_id>/<kindslug:kind_slug>/", listing.resource_list, name="resource_list"),
    path(
        "<int:cluster_id>/<kindslug:kind_slug>/<str:namespace>/<str:name>/",
        detail.resource_detail,
        name="resource_detail",
    ),
]
