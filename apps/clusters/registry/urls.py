"""URL patterns for the cluster registry pages; joined into the "clusters" namespace by urls.py."""

from django.urls import path

from apps.clusters.registry import views as views_registry

urlpatterns: list = [
    path("registry/add/", views_registry.registry_add, name="registry_add"),
    path("registry/test/", views_registry.registry_test, name="registry_test"),
    path("registry/<int:cluster_id>/settings/", views_registry.registry_settings, name="registry_settings"),
    path("registry/<int:cluster_id>/delete/", views_registry.registry_delete, name="registry_delete"),
    path("registry/<int:cluster_id>/test/", views_registry.registry_test_cluster, name="registry_test_cluster"),
]
