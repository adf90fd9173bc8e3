"""Celery side of the inventory: a periodic full resync of every cluster that no sync process watches, the safety
net behind the watches."""

from __future__ import annotations

import logging

from celery import shared_task

from apps.core.locks import LockBusy, redis_lock

logger = logging.getLogger(__name__)


@shared_task(name="clusters.full_resync")
def full_resync_all() -> None:
    from apps.clusters.models import Cluster

    for cluster_id in Cluster.objects.values_list("pk", flat=True):
        full_resync_cluster.delay(cluster_id)


@shared_task(name="clusters.full_resync_cluster")
def full_resync_cluster(cluster_id: int) -> None:
    from apps.clusters.inventory.sync import resync_unwatched
    from apps.clusters.kube import KubeError
    from apps.clusters.models import Cluster

    cluster = Cluster.objects.filter(pk=cluster_id).first()
    if cluster is None:
        return
    try:
        with redis_lock(f"inventory-resync:{cluster_id}", timeout=1800):
            if not resync_unwatched(cluster):
                logger.info("full resync skipped: a sync process watches it", extra={"cluster": cluster.name})
    except LockBusy:
        logger.info("full resync already running", extra={"cluster": cluster.name})
    except KubeError as exc:
        logger.warning("full resync failed", extra={"cluster": cluster.name, "reason": str(exc)})
