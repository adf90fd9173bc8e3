"""Celery tasks of backups: thin wrappers, ids in. A backup's body is ``runner.execute``; a worker that dies
mid-backup leaves a Job the reaper ends, and ``_orphaned`` marks its backup Failed (no object it left counts)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from apps.backups import runner
from apps.backups.models import Backup, Restore
from apps.backups.velero import follow as velero_follow
from apps.core.deferred import N_, fit
from apps.core.deferred import text as D
from apps.core.jobs import JobRecorder, JobTask
from apps.core.models import Job


def _orphaned(job: Job) -> str:
    sentence = D(
        N_("The worker taking this backup stopped (at %(progress)s%%); it is not kept. Run it again."),
        progress=job.progress,
    )
    backup = Backup.objects.filter(job=job, status=Backup.Status.RUNNING).select_related("target", "cluster").first()
    if backup is not None:
        runner.fail(backup, sentence)
    restore = Restore.objects.filter(job=job, status=Restore.Status.RUNNING).first()
    if restore is not None:
        Restore.objects.filter(pk=restore.pk).update(
            status=Restore.Status.FAILED, finished_at=timezone.now(), message=fit(sentence, 500)
        )
    return sentence


def _cancelled(job: Job) -> str:
    who = job.cancelled_by.get_username() if job.cancelled_by else D(N_("the system"))
    sentence = D(N_("Cancelled by %(user)s at %(progress)s%%; nothing of it is kept."), user=who, progress=job.progress)
    backup = Backup.objects.filter(job=job, status=Backup.Status.RUNNING).select_related("target", "cluster").first()
    if backup is not None:
        runner.fail(backup, sentence)
    return sentence


class BackupTask(JobTask):
    abstract = True
    max_retries = 0  # a failed backup is not retried by itself: the schedule's next run, or a person, runs it again
    when_orphaned = staticmethod(_orphaned)
    when_cancelled = staticmethod(_cancelled)


@shared_task(base=BackupTask, name="backups.take")
def take_backup(job: JobRecorder, backup_id: int) -> None:
    runner.execute(job, backup_id)


@shared_task(base=BackupTask, name="backups.follow_velero")
def follow_velero(job: JobRecorder, kind: str, object_id: int) -> None:
    velero_follow.follow(job, kind, object_id)
