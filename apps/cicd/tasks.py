"""Celery tasks of CI/CD: thin wrappers, ids in. A run's body is ``runner.execute``; when it ends (however it
ends) the project's queue is dispatched again so the next queued run takes the freed slot."""

from __future__ import annotations

import logging

from celery import current_app, shared_task
from django.utils import timezone
from kombu.exceptions import OperationalError

from apps.cicd import runner
from apps.cicd.models import Run, Stage
from apps.cicd.stagelog import word
from apps.core.deferred import N_, fit
from apps.core.deferred import text as D
from apps.core.jobs import JobRecorder, JobTask
from apps.core.models import Job
from apps.core.redis import REDIS_DOWN_ERRORS

logger = logging.getLogger(__name__)


def _end_run(job: Job, status: str, sentence_for_stage) -> str:
    run_id = (job.args or [None])[0]
    run = Run.objects.filter(pk=run_id).select_related("pipeline").first() if run_id is not None else None
    if run is None:
        return ""
    stage = run.stages.filter(status=Stage.Status.RUNNING).first()
    sentence = sentence_for_stage(stage.key if stage else "")
    now = timezone.now()
    if stage is not None:
        Stage.objects.filter(pk=stage.pk).update(
            status=Stage.Status.FAILED if status == Run.Status.FAILED else Stage.Status.CANCELLED,
            finished_at=now,
            message=fit(sentence, 500),
        )
    Stage.objects.filter(run=run, status=Stage.Status.PENDING).update(
        status=Stage.Status.SKIPPED if status == Run.Status.FAILED else Stage.Status.CANCELLED
    )
    Run.objects.filter(pk=run.pk, status__in=Run.ACTIVE).update(
        status=status, finished_at=now, message=fit(sentence, 500)
    )
    _dispatch_later(run.pipeline.project_id)
    return sentence


def _dispatch_later(project_id: int) -> None:
    """Queue the project's dispatcher (beat.py's ``cicd.dispatch_project``, named: it goes through services)."""
    try:
        current_app.send_task("cicd.dispatch_project", args=[project_id])
    except (OperationalError, *REDIS_DOWN_ERRORS):  # the broker is away: beat's pass (every 30 s) dispatches
        logger.warning("dispatch not queued", extra={"project": project_id})


def _orphaned(job: Job) -> str:
    def sentence(stage: str) -> str:
        if stage:
            return D(
                N_(
                    "The worker running this pipeline stopped during the %(stage)s stage (at %(progress)s%%); "
                    "nothing after it ran. Run it again."
                ),
                stage=word(stage),
                progress=job.progress,
            )
        return D(N_("The worker running this pipeline stopped; nothing after it ran. Run it again."))

    return _end_run(job, Run.Status.FAILED, sentence)


def _cancelled(job: Job) -> str:
    who = job.cancelled_by.get_username() if job.cancelled_by else D(N_("the system"))

    def sentence(stage: str) -> str:
        if stage:
            return D(N_("Cancelled by %(user)s during the %(stage)s stage."), user=who, stage=word(stage))
        return D(N_("Cancelled by %(user)s."), user=who)

    return _end_run(job, Run.Status.CANCELLED, sentence)


class PipelineTask(JobTask):
    abstract = True
    max_retries = 0  # a run is not retried by itself: a person re-runs it
    when_orphaned = staticmethod(_orphaned)
    when_cancelled = staticmethod(_cancelled)


@shared_task(base=PipelineTask, name="cicd.run")
def execute_run(job: JobRecorder, run_id: int) -> None:
    project_id = Run.objects.filter(pk=run_id).values_list("pipeline__project_id", flat=True).first()
    try:
        runner.execute(run_id, job)
    finally:
        if project_id is not None:
            _dispatch_later(project_id)
