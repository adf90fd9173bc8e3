from django.urls import path

from apps.backups import runbook, views
from apps.backups.platform import views as platform
from apps.backups.velero import views as velero

app_name = "backups"

urlpatterns = [
    # Every cluster's plans and their freshness; one cluster's plans, etcd snapshots and Velero.
    path("", views.home, name="home"),
    path("clusters/<int:cluster_id>/", views.cluster, name="cluster"),
    path("clusters/<int:cluster_id>/runbook/", runbook.runbook, name="runbook"),
    path("clusters/<int:cluster_id>/plans/new/", views.plan_create, name="plan_create"),
    path("clusters/<int:cluster_id>/velero/", velero.cluster_velero, name="cluster_velero"),
    path("clusters/<int:cluster_id>/velero/backup/", velero.velero_backup, name="velero_backup"),
    path("clusters/<int:cluster_id>/velero/backups/<str:name>/restore/", velero.velero_restore, name="velero_restore"),
    path(
        "clusters/<int:cluster_id>/velero/backups/<str:name>/log/", velero.velero_backup_log, name="velero_backup_log"
    ),
    path(
        "clusters/<int:cluster_id>/velero/restores/<str:name>/log/",
        velero.velero_restore_log,
        name="velero_restore_log",
    ),
    # Plans (etcd, Velero, Kubemate's database).
    path("plans/<int:pk>/edit/", views.plan_edit, name="plan_edit"),
    path("plans/<int:pk>/delete/", views.plan_delete, name="plan_delete"),
    path("plans/<int:pk>/run/", views.plan_run, name="plan_run"),
    # The platform's: storage targets, etcd access, Velero's namespace, Kubemate's own database.
    path("platform/", platform.platform, name="platform"),
    path("platform/targets/new/", platform.target_create, name="target_create"),
    path("platform/targets/<int:pk>/edit/", platform.target_edit, name="target_edit"),
    path("platform/targets/<int:pk>/delete/", platform.target_delete, name="target_delete"),
    path("platform/targets/<int:pk>/check/", platform.target_check, name="target_check"),
    path("platform/clusters/<int:cluster_id>/etcd/", platform.etcd_access, name="etcd_access"),
    path("platform/clusters/<int:cluster_id>/velero/", platform.velero_namespace, name="velero_namespace"),
    path("platform/database-plans/new/", views.database_plan_create, name="database_plan_create"),
]
