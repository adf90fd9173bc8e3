"""Long work as Job rows: ``start_job`` queues it, ``JobTask`` runs it and records progress.

A task built on JobTask receives a ``JobRecorder`` as its first argument
instead of the job id it was queued with::

    @shared_task(base=JobTask, name="clusters.drain_node")
    def drain_node(job: JobRecorder, node_id: int) -> None:
        job.progress(10, _("Cordoning the node"))

The recorder writes through queryset updates, so a page polling the row sees
progress while the task runs. An exception marks the job failed with its
message as the sentence a person reads; ``TransientError`` is retried with
backoff before that.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from typing import Any

from celery import Task
from celery.exceptions import Retry
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core import heartbeat
from apps.core.models import Job, JobLogLine
from apps.core.redis import ServiceUnavailable, require_redis

logger = logging.getLogger(__name__)


class TransientError(Exception):
    """A failure worth retrying (a timeout, a busy lock); the task is retried with backoff."""


class JobRecorder:
    """What a running task may do to its Job row."""

    def __init__(self, job: Job) -> None:
        self.job = job

    @property
    def id(self):
        return self.job.pk

    def progress(self, percent: int, message: str = "") -> None:
        percent = max(0, min(100, int(percent)))
        fields: dict[str, Any] = {"progress": percent, "heartbeat_at": timezone.now()}
        if message:
            fields["message"] = message[:500]
        Job.objects.filter(pk=self.job.pk).update(**fields)
        if message:
            self.log(message)

    def log(self, message: str, level: str = JobLogLine.Level.INFO) -> None:
        JobLogLine.objects.create(job_id=self.job.pk, message=message, level=level)


class JobTask(Task):
    """Celery base task that runs against a Job row (see module docstring)."""

    abstract = True
    max_retries = 3
    retry_backoff_seconds = 5

    def __call__(self, job_id: str, *args: Any, **kwargs: Any) -> Any:
        job = Job.objects.filter(pk=job_id).first()
        if job is None or job.is_finished:
            # Re-delivered after completion, or the row is gone: nothing to do.
            return None
        now = timezone.now()
        Job.objects.filter(pk=job.pk, started_at__isnull=True).update(started_at=now)
        worker = heartbeat.CURRENT_KEY or f"{socket.gethostname()}:{os.getpid()}"
        Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, worker=worker, heartbeat_at=now)
        recorder = JobRecorder(job)
        try:
            result = self.run(recorder, *args, **kwargs)
        except Retry:
            raise
        except TransientError as exc:
            retries = self.request.retries or 0
            if retries < self.max_retries:
                recorder.log(_("Temporary problem: %(error)s; retrying.") % {"error": exc}, JobLogLine.Level.WARNING)
                raise self.retry(exc=exc, countdown=self.retry_backoff_seconds * 2**retries) from exc
            self._finish(job, Job.Status.FAILED, str(exc))
            recorder.log(str(exc), JobLogLine.Level.ERROR)
            return None
        except Exception as exc:
            logger.exception("job failed", extra={"job_id": str(job.pk), "kind": job.kind})
            sentence = str(exc) or _("The job stopped because of an unexpected error; see the worker log.")
            recorder.log(sentence, JobLogLine.Level.ERROR)
            self._finish(job, Job.Status.FAILED, sentence)
            return None
        self._finish(job, Job.Status.SUCCEEDED, _("Finished."), progress=100)
        return result

    @staticmethod
    def _finish(job: Job, status: str, message: str, progress: int | None = None) -> None:
        fields: dict[str, Any] = {"status": status, "finished_at": timezone.now(), "message": message[:500]}
        if progress is not None:
            fields["progress"] = progress
        Job.objects.filter(pk=job.pk).update(**fields)


def start_job(*, task: Task, title: str, actor=None, target: str = "", args: tuple = ()) -> Job:
    """Create a pending Job and queue ``task`` for it once the transaction commits.

    Arguments are ids and plain values only, never secrets: they travel through Redis.
    """
    require_redis()  # no Job row, no audit event for work that cannot be queued (ServiceUnavailable)
    with transaction.atomic():
        job = Job.objects.create(kind=task.name, title=title, actor=actor, target=target)
        transaction.on_commit(lambda: _enqueue(job, task, args), robust=True)
    return job


def _enqueue(job: Job, task: Task, args: tuple) -> None:
    """Queue the task; if the broker fails between the check above and now, the job ends failed, not pending."""
    try:
        task.apply_async(args=(str(job.pk), *args), retry=False)
    except Exception:  # kombu's errors vary by transport; every one means "not queued"
        logger.exception("job could not be queued", extra={"job_id": str(job.pk), "kind": job.kind})
        JobTask._finish(job, Job.Status.FAILED, str(ServiceUnavailable()))


def heartbeat_timeout() -> timedelta:
    """How long a Running job may go without a heartbeat before its worker is taken for dead (default 90 s:
    nine missed beats of the worker's 10 s heartbeat, so a busy database or a long GC pause is no death)."""
    return timedelta(seconds=getattr(settings, "KUBEMATE_JOB_HEARTBEAT_TIMEOUT", 90))


def reap_orphaned_jobs() -> int:
    """End every Running job whose worker stopped beating; returns how many were ended.

    The job is marked failed with a sentence that says where it stopped and what to do; its locks expire
    with their own timeouts. Run by beat every 30 s and whenever a page polls a job, so a dead worker is
    noticed within the timeout plus 30 s even when beat itself is down.
    """
    stale = timezone.now() - heartbeat_timeout()
    orphans = Job.objects.filter(status=Job.Status.RUNNING).filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, started_at__lt=stale)
    )
    ended = 0
    for job in orphans:
        sentence = _(
            "The worker running this job stopped at %(progress)s%% and did not come back. Nothing more will "
            "happen by itself: check what was done, then start the job again."
        ) % {"progress": job.progress}
        updated = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, heartbeat_at=job.heartbeat_at).update(
            status=Job.Status.FAILED, finished_at=timezone.now(), message=sentence[:500]
        )
        if updated:
            JobLogLine.objects.create(job_id=job.pk, message=sentence, level=JobLogLine.Level.ERROR)
            logger.warning("job ended: its worker stopped", extra={"job_id": str(job.pk), "worker": job.worker})
            ended += updated
    return ended
