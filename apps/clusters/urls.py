from django.urls import path

from apps.clusters.actions import urls as urls_actions
from apps.clusters.inventory import urls as urls_inventory
from apps.clusters.inventory.pages import home
from apps.clusters.registry import urls as urls_registry

app_name = "clusters"

# Each area keeps its own pattern list; all share the "clusters" namespace.
urlpatterns = [
    path("", home.cluster_list, name="cluster_list"),
    *urls_registry.urlpatterns,
    *urls_inventory.urlpatterns,
    *urls_actions.urlpatterns,
]
