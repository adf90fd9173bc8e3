"""Celery tasks of the cluster actions: ids in, the work lives beside them (drain.py)."""

from __future__ import annotations

from celery import shared_task

from apps.clusters.actions.drain import drain_job
from apps.core.jobs import JobRecorder, JobTask


@shared_task(base=JobTask, name="clusters.drain_node")
def drain_node(job: JobRecorder, cluster_id: int, node: str) -> None:
    """Cordon ``node`` and evict its pods, as the user who started the job (Job.actor)."""
    drain_job(job, cluster_id=cluster_id, node=node)
