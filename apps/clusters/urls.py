from django.urls import path

from apps.clusters import urls_actions, urls_inventory, urls_registry, views

app_name = "clusters"

# Each area keeps its own pattern list; all share the "clusters" namespace.
urlpatterns = [
    path("", views.cluster_list, name="cluster_list"),
    *urls_registry.urlpatterns,
    *urls_inventory.urlpatterns,
    *urls_actions.urlpatterns,
]
