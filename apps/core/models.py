"""Shared state with no domain of its own: long-running Jobs and their log lines, and the audit log."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Job(models.Model):
    """A unit of long work (a sync, a drain, a deploy) run by a Celery task.

    The row is created by ``core.jobs.start_job`` before the task is queued, so
    a page can show it at once; the task (``core.jobs.JobTask``) moves it
    through running to succeeded or failed and records progress and log lines.
    ``message`` is the latest sentence for a person; ``target`` names what the
    job acts on (for example ``cluster/prod/deployment/payments/api``).
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(_("kind"), max_length=100)
    title = models.CharField(_("title"), max_length=255)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    progress = models.PositiveSmallIntegerField(_("progress"), default=0)
    message = models.CharField(_("message"), max_length=500, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("actor"), null=True, blank=True, on_delete=models.SET_NULL
    )
    target = models.CharField(_("target"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Which worker runs the job and when it last said so: a Running job whose worker stopped saying so is
    # ended by core.jobs.reap_orphaned_jobs instead of staying Running for ever.
    worker = models.CharField(_("worker"), max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)
    # The task's arguments (ids and plain values only, never secrets), kept to queue it again when the broker lost
    # its message (a Redis restart): core.jobs.resend_lost_jobs.
    args = models.JSONField(_("arguments"), default=list, blank=True)
    # Someone asked the job to stop (core.jobs.cancel_job): a pending job ends at once, a running one at its next
    # step (JobRecorder.progress / check_cancelled), in the words of the task's ``when_cancelled``.
    cancel_requested_at = models.DateTimeField(_("cancel requested"), null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("cancelled by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        indexes = [models.Index(fields=["actor", "-created_at"]), models.Index(fields=["status"])]
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="core_job_progress_at_most_100"),
            models.CheckConstraint(
                condition=Q(finished_at__isnull=True)
                | Q(started_at__isnull=True)
                | Q(finished_at__gte=F("started_at")),
                name="core_job_finishes_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def duration(self):
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at


class JobLogLine(models.Model):
    """One line a job wrote for the person following it; never holds secrets."""

    class Level(models.TextChoices):
        INFO = "info", _("Info")
        WARNING = "warning", _("Warning")
        ERROR = "error", _("Error")

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="log_lines")
    created_at = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    message = models.TextField()

    class Meta:
        ordering = ["id"]
        verbose_name = _("job log line")
        verbose_name_plural = _("job log lines")

    def __str__(self) -> str:
        return self.message


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("The audit log is append-only.")

    def delete(self):
        raise PermissionError("The audit log is append-only.")


class AuditEvent(models.Model):
    """One mutation or security event: who, what, where, result. Append-only and hash-chained.

    ``seq`` counts from 1 without gaps; ``hash`` is SHA-256 over this event's
    fields and ``prev_hash``, so changing or removing any row breaks the chain
    (``manage.py audit_verify``). ``AuditHead`` holds the last seq and hash so
    that removing the newest rows is detected too. A database trigger refuses
    UPDATE, DELETE and TRUNCATE. Actor is stored as id and name, not a foreign
    key, so that removing a user never rewrites history.
    """

    class Result(models.TextChoices):
        SUCCESS = "success", _("Success")
        FAILURE = "failure", _("Failure")
        DENIED = "denied", _("Denied")

    seq = models.BigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField(_("time"), editable=False, db_index=True)
    actor_id = models.BigIntegerField(null=True, editable=False)
    actor_name = models.CharField(_("actor"), max_length=150, editable=False, db_index=True)
    action = models.CharField(_("action"), max_length=100, editable=False, db_index=True)
    result = models.CharField(_("result"), max_length=16, choices=Result.choices, editable=False)
    cluster = models.CharField(_("cluster"), max_length=63, blank=True, editable=False, db_index=True)
    namespace = models.CharField(_("namespace"), max_length=63, blank=True, editable=False)
    object_kind = models.CharField(_("kind"), max_length=63, blank=True, editable=False)
    object_name = models.CharField(_("object"), max_length=253, blank=True, editable=False)
    detail = models.JSONField(_("detail"), default=dict, blank=True, editable=False)
    ip = models.GenericIPAddressField(_("address"), null=True, blank=True, editable=False)
    # Why, in the person's words (a change-ticket number, "incident 4711"), from the confirmation dialog.
    reason = models.CharField(_("reason"), max_length=500, blank=True, default="", editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    objects = AuditQuerySet.as_manager()

    class Meta:
        db_table = "accounts_auditevent"  # created by accounts before the audit log moved to core
        ordering = ["-seq"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")

    def __str__(self) -> str:
        return f"#{self.seq} {self.actor_name} {self.action} {self.result}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("The audit log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The audit log is append-only.")


class AuditHead(models.Model):
    """The newest audit event's seq and hash (a single row), locked while an event is appended."""

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    class Meta:
        db_table = "accounts_audithead"
        verbose_name = _("audit chain head")

    def __str__(self) -> str:
        return f"#{self.seq} {self.hash[:12]}"


class Lease(models.Model):
    """Who does a piece of work that must run in one process at a time across every replica (a cluster's
    inventory sync, the beat schedule), until when, and the fencing token of that tenure.

    ``leases.py`` is the one module that reads or writes it; every time is the database's clock. ``token``
    grows by one each time the lease changes hands, so a holder that was paused or cut off and comes back
    finds its token stale: its writes are refused (``leases.fence``) and it stops.
    """

    name = models.CharField(max_length=200, unique=True)
    holder = models.CharField(max_length=200, blank=True)
    token = models.BigIntegerField(default=0)
    acquired_at = models.DateTimeField(null=True, blank=True)
    renewed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} → {self.holder or '-'} #{self.token}"
