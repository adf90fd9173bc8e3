"""Core Celery tasks."""

from __future__ import annotations

import time

from celery import shared_task
from django.utils.translation import gettext as _

from apps.core.jobs import JobRecorder, JobTask
from apps.core.locks import redis_lock


@shared_task(base=JobTask, name="core.demo_progress")
def demo_progress(job: JobRecorder, steps: int = 5, pause: float = 1.0) -> None:
    """A harmless job that reports progress step by step, to check that workers run jobs."""
    with redis_lock(f"demo-progress:{job.id}", timeout=steps * pause + 60):
        for step in range(1, steps + 1):
            time.sleep(pause)
            job.progress(step * 100 // steps, _("Step %(step)d of %(steps)d done.") % {"step": step, "steps": steps})
