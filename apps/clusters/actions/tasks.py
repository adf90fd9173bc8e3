"""Celery tasks of the clusters app: ids in, the work lives in services."""

from __future__ import annotations

from celery import shared_task

from apps.core.jobs import JobRecorder, JobTask


@shared_task(base=JobTask, name="clusters.drain_node")
def drain_node(job: JobRecorder, cluster_id: int, node: str) -> None:
    """Cordon ``node`` and evict its pods, as the user who started the job (Job.actor)."""
    from apps.clusters.actions.services import drain_job

    drain_job(job, cluster_id=cluster_id, node=node)
