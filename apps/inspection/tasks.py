"""Celery tasks of inspection: thin wrappers, ids in. The run's body is ``runner.execute``; the emails are
``reports.mail``; beat starts ``run_scheduled`` for each schedule (django-celery-beat entries written by
``services._sync_beat``)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from apps.core.deferred import N_, fit, sentence_of
from apps.core.deferred import text as D
from apps.core.jobs import JobRecorder, JobTask
from apps.core.models import Job
from apps.inspection import runner
from apps.inspection.models import Run
from apps.inspection.reports import mail

logger = logging.getLogger(__name__)

EMAIL_RETRIES = 4
EMAIL_BACKOFF = 30  # seconds, doubled per attempt


def _run_failed(run_id: int, sentence: str) -> None:
    Run.objects.filter(pk=run_id, status__in=[Run.Status.PENDING, Run.Status.RUNNING]).update(
        status=Run.Status.FAILED, finished_at=timezone.now(), message=fit(sentence, 500)
    )


def _orphaned(job: Job) -> str:
    sentence = D(
        N_("The worker running this inspection stopped at %(progress)s%%; nothing was kept. Run it again."),
        progress=job.progress,
    )
    run_id = (job.args or [None])[0]
    if run_id is not None:
        _run_failed(run_id, sentence)
    return sentence


def _cancelled(job: Job) -> str:
    sentence = D(N_("Inspection cancelled at %(progress)s%%; nothing was kept."), progress=job.progress)
    run_id = (job.args or [None])[0]
    if run_id is not None:
        _run_failed(run_id, sentence)
    return sentence


class InspectionTask(JobTask):
    abstract = True
    max_retries = 0  # a run is not retried: run it again
    when_orphaned = staticmethod(_orphaned)
    when_cancelled = staticmethod(_cancelled)


@shared_task(base=InspectionTask, name="inspection.run")
def run_inspection(job: JobRecorder, run_id: int) -> None:
    run = Run.objects.select_related("template", "schedule", "actor").get(pk=run_id)
    try:
        run = runner.execute(run, job.progress)
    except Exception as exc:
        _run_failed(run_id, sentence_of(exc) or D(N_("The inspection stopped because of an unexpected error.")))
        raise
    if run.schedule_id and run.schedule.recipients:
        Run.objects.filter(pk=run.pk).update(email_state=Run.Email.PENDING)
        email_run.delay(run.pk)


@shared_task(bind=True, name="inspection.email_run", acks_late=True, max_retries=EMAIL_RETRIES)
def email_run(self, run_id: int) -> None:
    try:
        mail.send_run_report(run_id)
    except mail.SendFailed as exc:
        if self.request.retries < EMAIL_RETRIES:
            raise self.retry(exc=exc, countdown=EMAIL_BACKOFF * 2**self.request.retries) from exc
        mail.give_up_run(run_id, exc)


@shared_task(bind=True, name="inspection.email_weekly", acks_late=True, max_retries=EMAIL_RETRIES)
def email_weekly(self, report_id: int) -> None:
    try:
        mail.send_weekly_report(report_id)
    except mail.SendFailed as exc:
        if self.request.retries < EMAIL_RETRIES:
            raise self.retry(exc=exc, countdown=EMAIL_BACKOFF * 2**self.request.retries) from exc
        mail.give_up_weekly(report_id, exc)
