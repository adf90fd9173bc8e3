"""URL patterns for the cluster actions pages; joined into the "clusters" namespace by urls.py.

Objects are addressed as <cluster_id>/actions/<kind>/<namespace>/<name>/ with the kind in
lower case and "-" as the namespace of cluster-scoped objects (nodes).
"""

from django.urls import path

from apps.clusters.actions import views

OBJECT = "<int:cluster_id>/actions/<slug:kind>/<str:namespace>/<str:name>/"
POD = "<int:cluster_id>/actions/pod/<str:namespace>/<str:name>/"
NODE = "<int:cluster_id>/actions/node/-/<str:name>/"

urlpatterns: list = [
    path(f"{POD}delete/", views.pod_delete, name="pod_delete"),
    path(f"{POD}logs/", views.pod_logs, name="pod_logs"),
    path(f"{POD}logs/follow/", views.pod_logs_follow, name="pod_logs_follow"),
    path(f"{POD}logs/download/", views.pod_logs_download, name="pod_logs_download"),
    path(f"{NODE}cordon/", views.node_cordon, name="node_cordon"),
    path(f"{NODE}uncordon/", views.node_uncordon, name="node_uncordon"),
    path(f"{NODE}drain/", views.node_drain, name="node_drain"),
    path(f"{NODE}drain/resume/", views.node_drain_resume, name="node_drain_resume"),
    path(f"{NODE}drain/undo/", views.node_drain_undo, name="node_drain_undo"),
    path(f"{OBJECT}scale/", views.workload_scale, name="workload_scale"),
    path(f"{OBJECT}restart/", views.workload_restart, name="workload_restart"),
    path(f"{OBJECT}yaml/", views.resource_yaml, name="resource_yaml"),
    path(f"{OBJECT}encrypt-field/", views.encrypt_field, name="encrypt_field"),
    path(f"{OBJECT}reveal/", views.secret_reveal, name="secret_reveal"),
    path(f"{OBJECT}yaml/edit/", views.resource_yaml_edit, name="resource_yaml_edit"),
]
