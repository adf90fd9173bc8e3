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
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import Task, current_app
from celery.exceptions import Retry
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core import audit, broker, heartbeat
from apps.core.deferred import N_, Failure, fit, sentence_of
from apps.core.deferred import text as D
from apps.core.models import Job, JobLogLine
from apps.core.redis import ServiceUnavailable, require_redis

logger = logging.getLogger(__name__)


class TransientError(Exception):
    """A failure worth retrying (a timeout, a busy lock); the task is retried with backoff."""


class JobCancelled(Exception):
    """Someone cancelled the job; raised at the task's next step, the job ends Cancelled."""


class JobError(Exception):
    """A job cannot be cancelled (it has finished); the message is the sentence to show."""


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
            fields["message"] = fit(message, 500)
        Job.objects.filter(pk=self.job.pk).update(**fields)
        if message:
            self.log(message)
        self.check_cancelled()

    def check_cancelled(self) -> None:
        """Raise JobCancelled when someone cancelled the job; long waits call it each round."""
        if Job.objects.filter(pk=self.job.pk, cancel_requested_at__isnull=False).exists():
            raise JobCancelled(D(N_("Cancelled.")))

    def log(self, message: str, level: str = JobLogLine.Level.INFO) -> None:
        JobLogLine.objects.create(job_id=self.job.pk, message=message, level=level)


class JobTask(Task):
    """Celery base task that runs against a Job row (see module docstring)."""

    abstract = True
    max_retries = 3
    retry_backoff_seconds = 5
    # Delivery (apps/core/README.md): acknowledged when the body has run, and handed back to the broker when the
    # process running it dies, so a job whose worker died before starting it is started by another. The claim in
    # __call__ keeps a second delivery of a started job from running it again.
    acks_late = True
    reject_on_worker_lost = True
    # What the reaper says, and does, when the worker running such a job died: a function of the Job that
    # returns the sentence for the person (and may put the domain in a clear state, as the rollout wait
    # marks its revision failed). None: the generic sentence.
    when_orphaned: Callable[[Job], str] | None = None
    # The same for a job someone cancelled while it ran (say what stays as it is and what to do next).
    when_cancelled: Callable[[Job], str] | None = None

    def __call__(self, job_id: str, *args: Any, **kwargs: Any) -> Any:
        now = timezone.now()
        # Claim the job: only a pending job starts. A message delivered again (a worker died before acknowledging
        # it, or it outlived the broker's visibility timeout) finds the job running elsewhere, ended by the
        # reaper, or finished, and does nothing, so no job body ever runs twice at once.
        claimed = Job.objects.filter(pk=job_id, status=Job.Status.PENDING).update(
            status=Job.Status.RUNNING, worker=heartbeat.worker_name()[:200], heartbeat_at=now
        )
        if not claimed:
            logger.info("job not started: it is not pending", extra={"job_id": str(job_id), "task": self.name})
            return None
        Job.objects.filter(pk=job_id, started_at__isnull=True).update(started_at=now)
        job = Job.objects.get(pk=job_id)
        recorder = JobRecorder(job)
        try:
            with heartbeat.running(job.pk):
                result = self.run(recorder, *args, **kwargs)
        except Retry:
            raise
        except JobCancelled:
            job.refresh_from_db()
            sentence = self._cancelled_sentence(job)
            recorder.log(sentence, JobLogLine.Level.WARNING)
            self._finish(job, Job.Status.CANCELLED, sentence)
            return None
        except TransientError as exc:
            retries = self.request.retries or 0
            if retries < self.max_retries:
                recorder.log(
                    D(N_("Temporary problem: %(error)s; retrying."), error=sentence_of(exc)), JobLogLine.Level.WARNING
                )
                # Pending again: the retried message claims it like the first one did.
                Job.objects.filter(pk=job.pk).update(status=Job.Status.PENDING, heartbeat_at=None)
                raise self.retry(exc=exc, countdown=self.retry_backoff_seconds * 2**retries) from exc
            self._finish(job, Job.Status.FAILED, sentence_of(exc))
            recorder.log(sentence_of(exc), JobLogLine.Level.ERROR)
            return None
        except Exception as exc:
            if isinstance(exc, Failure):  # a refusal worded for people (a policy, a stage that says why): no traceback
                logger.warning(
                    "job failed: %s", sentence_of(exc)[:300], extra={"job_id": str(job.pk), "kind": job.kind}
                )
            else:
                logger.exception("job failed", extra={"job_id": str(job.pk), "kind": job.kind})
            sentence = sentence_of(exc) or D(N_("The job stopped because of an unexpected error; see the worker log."))
            recorder.log(sentence, JobLogLine.Level.ERROR)
            self._finish(job, Job.Status.FAILED, sentence)
            return None
        self._finish(job, Job.Status.SUCCEEDED, D(N_("Finished.")), progress=100)
        return result

    def _cancelled_sentence(self, job: Job) -> str:
        who = job.cancelled_by.get_username() if job.cancelled_by else D(N_("the system"))
        generic = D(N_("Cancelled by %(user)s at %(progress)s%%."), user=who, progress=job.progress)
        hook = type(self).when_cancelled
        if hook is None:
            return generic
        try:
            return hook(job) or generic
        except Exception:  # a broken hook must not keep the job Running
            logger.exception("job cancelled without its task's words", extra={"job_id": str(job.pk)})
            return generic

    @staticmethod
    def _finish(job: Job, status: str, message: str, progress: int | None = None) -> None:
        fields: dict[str, Any] = {"status": status, "finished_at": timezone.now(), "message": fit(message, 500)}
        if progress is not None:
            fields["progress"] = progress
        Job.objects.filter(pk=job.pk).update(**fields)


def start_job(*, task: Task, title: str, actor=None, target: str = "", args: tuple = ()) -> Job:
    """Create a pending Job and queue ``task`` for it once the transaction commits.

    Arguments are ids and plain values only, never secrets: they travel through Redis.
    """
    require_redis()  # no Job row, no audit event for work that cannot be queued (ServiceUnavailable)
    with transaction.atomic():
        job = Job.objects.create(kind=task.name, title=fit(title, 255), actor=actor, target=target, args=list(args))
        transaction.on_commit(lambda: _enqueue(job, task, args), robust=True)
    return job


def _enqueue(job: Job, task: Task, args: tuple) -> None:
    """Queue the task; if the broker fails between the check above and now, the job ends failed, not pending.

    The message's task id is the Job's id, so core.broker can tell whether the queue still holds it.
    """
    try:
        task.apply_async(args=(str(job.pk), *args), task_id=str(job.pk), retry=False)
    except Exception:  # kombu's errors vary by transport; every one means "not queued"
        logger.exception("job could not be queued", extra={"job_id": str(job.pk), "kind": job.kind})
        JobTask._finish(job, Job.Status.FAILED, str(ServiceUnavailable()))


def may_cancel(user, job: Job) -> bool:
    """Who may cancel a job: the person who started it, or a platform administrator."""
    return not job.is_finished and (user.is_superuser or (job.actor_id is not None and job.actor_id == user.pk))


def cancel_job(*, actor, job: Job, request=None) -> str:
    """Stop ``job`` as ``actor``: a pending one ends Cancelled now (its queued message then finds nothing to
    run), a running one at its next step. Audited; returns the sentence to show."""
    now = timezone.now()
    who = actor.get_username()
    with transaction.atomic():
        sentence = D(N_("Cancelled by %(user)s before it started."), user=who)
        ended = Job.objects.filter(pk=job.pk, status=Job.Status.PENDING).update(
            status=Job.Status.CANCELLED,
            finished_at=now,
            cancel_requested_at=now,
            cancelled_by=actor,
            message=fit(sentence, 500),
        )
        if not ended:
            sentence = D(N_("Cancelling: the job stops at its next step."))
            asked = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, cancel_requested_at__isnull=True).update(
                cancel_requested_at=now, cancelled_by=actor
            )
            if not asked:
                job.refresh_from_db()
                if job.status == Job.Status.RUNNING:
                    return D(N_("Cancelling: the job stops at its next step."))
                raise JobError(D(N_("This job has finished: there is nothing to cancel.")))
        JobLogLine.objects.create(
            job_id=job.pk,
            message=D(N_("%(user)s asked to cancel the job."), user=who),
            level=JobLogLine.Level.WARNING,
        )
        audit.record(
            actor=actor,
            action="core.job.cancel",
            kind="Job",
            name=str(job.pk),
            detail={"title": job.title, "kind": job.kind, "target": job.target, "was": job.status},
            request=request,
        )
    return sentence


def heartbeat_timeout() -> timedelta:
    """How long a Running job may go without a heartbeat before its worker is taken for dead (default 90 s:
    nine missed beats of the worker's 10 s heartbeat, so a busy database or a long GC pause is no death)."""
    return timedelta(seconds=getattr(settings, "KUBEMATE_JOB_HEARTBEAT_TIMEOUT", 90))


def reap_orphaned_jobs() -> int:
    """End every Running job whose worker stopped beating; returns how many were ended.

    The job is marked failed with a sentence that says where it stopped and what to do (the task's
    ``when_orphaned`` words it for its domain); its locks expire with their own keep time (core.locks). Run by
    beat every 30 s and whenever a page polls a running job, so a dead worker is noticed within the timeout
    plus 30 s even when beat itself is down.
    """
    stale = timezone.now() - heartbeat_timeout()
    orphans = Job.objects.filter(status=Job.Status.RUNNING).filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, started_at__lt=stale)
    )
    ended = 0
    for job in orphans:
        sentence = D(
            N_(
                "The worker running this job stopped at %(progress)s%% and did not come back. Nothing more will "
                "happen by itself: check what was done, then start the job again."
            ),
            progress=job.progress,
        )
        with transaction.atomic():
            updated = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, heartbeat_at=job.heartbeat_at).update(
                status=Job.Status.FAILED, finished_at=timezone.now(), message=fit(sentence, 500)
            )
            if not updated:
                continue  # it beat meanwhile, or another reaper took it
            worded = _orphan_sentence(job)
            if worded:
                sentence = worded
                Job.objects.filter(pk=job.pk).update(message=fit(sentence, 500))
            JobLogLine.objects.create(job_id=job.pk, message=sentence, level=JobLogLine.Level.ERROR)
        logger.warning("job ended: its worker stopped", extra={"job_id": str(job.pk), "worker": job.worker})
        ended += 1
    return ended


def _orphan_sentence(job: Job) -> str:
    """The task's own sentence (and clean-up) for an orphaned job, or "" for the generic one."""
    task = current_app.tasks.get(job.kind)
    hook = getattr(type(task), "when_orphaned", None) if task is not None else None
    if hook is None:
        return ""
    try:
        with transaction.atomic():
            return hook(job) or ""
    except Exception:  # a broken hook must not keep the job Running for ever
        logger.exception("job ended without its task's words", extra={"job_id": str(job.pk), "kind": job.kind})
        return ""


def resend_after() -> timedelta:
    """How long a job may stay Pending before Kubemate looks whether the queue still holds its message."""
    return timedelta(seconds=getattr(settings, "KUBEMATE_JOB_RESEND_SECONDS", 60))


def resend_lost_jobs() -> int:
    """Queue again every Pending job whose message the broker no longer holds (Redis restarted without it, or
    it was flushed); returns how many were queued again.

    Only jobs Pending for longer than ``resend_after`` are looked at, so a message on its way is never doubled;
    a message that turns up twice anyway is harmless: the claim in JobTask.__call__ starts a job only once. A
    job whose task is unknown or whose arguments were not kept ends failed with a sentence instead.
    """
    pending = list(Job.objects.filter(status=Job.Status.PENDING, created_at__lt=timezone.now() - resend_after()))
    if not pending:
        return 0
    held = broker.held({str(job.pk) for job in pending})
    resent = 0
    for job in pending:
        if str(job.pk) in held:
            continue
        task = current_app.tasks.get(job.kind)
        if task is None:
            JobTask._finish(
                job,
                Job.Status.FAILED,
                D(N_("This job's message was lost by the task queue and it cannot be queued again: start it again.")),
            )
            continue
        JobLogLine.objects.create(
            job_id=job.pk,
            message=D(N_("The task queue lost this job's message (Redis restarted); Kubemate queued it again.")),
            level=JobLogLine.Level.WARNING,
        )
        logger.warning("job queued again: its message was lost", extra={"job_id": str(job.pk), "kind": job.kind})
        _enqueue(job, task, tuple(job.args))
        resent += 1
    return resent
