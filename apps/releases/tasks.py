"""The rollout wait task: ids in, the work lives in rollout.py.

The automatic canary check task (``releases.analyse_canaries``) lives beside its body in analysis.py: it steps
canaries, which start rollouts through services, which queue the task here.
"""

from __future__ import annotations

from celery import shared_task

from apps.core.jobs import JobRecorder, JobTask
from apps.releases.rollout import rollout_cancelled, rollout_job, rollout_orphaned


# Delivery: apps/core/README.md. A dead worker's wait ends failed, and so does its revision (rollout_orphaned).
@shared_task(
    base=JobTask, name="releases.wait_rollout", when_orphaned=rollout_orphaned, when_cancelled=rollout_cancelled
)
def wait_rollout(job: JobRecorder, revision_id: int) -> None:
    """Follow a revision's rollout as the user who deployed it (Job.actor) until it is ready or has failed."""
    rollout_job(job, revision_id=revision_id)
