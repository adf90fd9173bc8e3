"""Celery tasks of the cluster actions: ids in, the work lives beside them (drain.py)."""

from __future__ import annotations

from celery import shared_task

from apps.clusters.actions.drain import DRAIN_KIND, drain_cancelled, drain_job, drain_orphaned
from apps.core.jobs import JobRecorder, JobTask


# Delivery: apps/core/README.md. A dead worker's drain ends failed with drain_orphaned's sentence; a person
# resumes or undoes it from the node page.
@shared_task(base=JobTask, name=DRAIN_KIND, when_orphaned=drain_orphaned, when_cancelled=drain_cancelled)
def drain_node(job: JobRecorder, cluster_id: int, node: str) -> None:
    """Cordon ``node`` and evict its pods, as the user who started the job (Job.actor)."""
    drain_job(job, cluster_id=cluster_id, node=node)
