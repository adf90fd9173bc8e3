"""The GPU pages' paths, spliced into the ``ai`` namespace by apps/ai/urls.py."""

from django.urls import path

from apps.ai.gpu import views

urlpatterns: list = [
    path("gpus/", views.gpu_home, name="gpu_home"),
    path("gpus/<int:cluster_id>/", views.gpu_cluster, name="gpu_cluster"),
    path("gpus/<int:cluster_id>/metrics/", views.gpu_metrics, name="gpu_metrics"),
    path("gpus/<int:cluster_id>/quotas/", views.gpu_quotas, name="gpu_quotas"),
]
