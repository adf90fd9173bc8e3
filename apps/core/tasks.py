"""Core's scheduled work (scheduled by migration 0003, every 30 s): ending jobs whose worker died, and queueing
again the jobs whose message the task queue lost."""

from celery import shared_task

from apps.core.jobs import reap_orphaned_jobs, resend_lost_jobs


@shared_task(name="core.reap_orphaned_jobs", ignore_result=True)
def reap_orphaned_jobs_task() -> int:
    return reap_orphaned_jobs() + resend_lost_jobs()
