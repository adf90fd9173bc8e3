"""Celery tasks of the releases app: ids in, the work lives in services."""

from __future__ import annotations

from celery import shared_task

from apps.core.jobs import JobRecorder, JobTask


@shared_task(base=JobTask, name="releases.wait_rollout")
def wait_rollout(job: JobRecorder, revision_id: int) -> None:
    """Follow a revision's rollout as the user who deployed it (Job.actor) until it is ready or has failed."""
    from apps.releases.services import rollout_job

    rollout_job(job, revision_id=revision_id)


@shared_task(name="releases.analyse_canaries", ignore_result=True)
def analyse_canaries() -> int:
    """Check the canaries with automatic steps whose next check has come (beat runs this every 10 seconds)."""
    from apps.releases.analysis import analyse_due

    return analyse_due()
