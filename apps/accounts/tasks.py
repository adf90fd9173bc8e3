"""RBAC projection tasks: on every change (after commit) and on a schedule (django-celery-beat)."""

from __future__ import annotations

from celery import shared_task

from apps.accounts.reconcile import reconcile_rbac
from apps.clusters.models import Cluster
from apps.core.locks import LockBusy, redis_lock


@shared_task(name="accounts.reconcile_cluster", autoretry_for=(LockBusy,), retry_backoff=2, max_retries=5)
def reconcile_cluster(cluster_id: int) -> None:
    cluster = Cluster.objects.filter(pk=cluster_id).first()
    if cluster is None:
        return
    with redis_lock(f"rbac:{cluster_id}", timeout=600):
        reconcile_rbac(cluster)


@shared_task(name="accounts.reconcile_all")
def reconcile_all() -> None:
    for cluster_id in Cluster.objects.values_list("pk", flat=True):
        reconcile_cluster.delay(cluster_id)
