"""Backup state: where backups go (S3-compatible storage targets), how Kubemate reaches a cluster's etcd, the plans
(what is backed up, when, where, how long it is kept and how old the newest may be), each backup taken and each
restore.

Three kinds of backup, one ``Plan`` shape:

- ``etcd``: a snapshot of a cluster's etcd through etcd's own client (``etcd.py``), verified, compressed, sealed
  (``seal.py``) and uploaded to the plan's target; a ``Backup`` row per snapshot.
- ``velero``: Velero's own ``Schedule`` and ``Backup`` objects (velero.io/v1) in the cluster's Velero namespace; the
  cluster holds their state (``velero.py`` reads it), a ``Backup`` row records who started one from the console.
- ``database``: Kubemate's own PostgreSQL database, ``pg_dump`` custom format, sealed and uploaded; restored by
  ``manage.py restore_database``.

Keys and certificates are stored encrypted (``core.crypto``) and never shown again.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.clusters.models import Cluster
from apps.core import crypto
from apps.core.models import Job


class Target(models.Model):
    """An S3-compatible bucket backups are written to (the bank's object store: Ceph RGW, versitygw, a cloud's S3).

    ``path_style`` addresses the bucket in the path (``https://host/bucket/key``), which most on-premises stores
    need. ``prefix`` is a folder inside the bucket. The access keys are encrypted; ``ca_pem`` is the store's own
    certificate authority. Saving a target writes, reads and deletes a probe object first."""

    name = models.CharField(_("name"), max_length=63, unique=True)
    endpoint = models.URLField(_("endpoint"), max_length=300, help_text=_("e.g. https://s3.bank.local:9000"))
    bucket = models.CharField(_("bucket"), max_length=63)
    region = models.CharField(_("region"), max_length=40, default="us-east-1")
    path_style = models.BooleanField(_("path-style addressing"), default=True)
    prefix = models.CharField(
        _("folder"), max_length=200, blank=True, help_text=_("A folder inside the bucket, e.g. kubemate/prod.")
    )
    ca_pem = models.TextField(_("certificate authority (PEM)"), blank=True)
    access_key_encrypted = models.TextField(editable=False)
    secret_key_encrypted = models.TextField(editable=False)
    last_checked_at = models.DateTimeField(_("last checked"), null=True, blank=True, editable=False)
    last_error = models.CharField(_("last error"), max_length=500, blank=True, editable=False)
    used_bytes = models.BigIntegerField(_("used"), null=True, blank=True, editable=False)
    object_count = models.IntegerField(_("objects"), null=True, blank=True, editable=False)
    counted_at = models.DateTimeField(_("counted"), null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("registered"), auto_now_add=True)

    class Meta:
        verbose_name = _("storage target")
        verbose_name_plural = _("storage targets")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def access_key(self) -> str:
        return crypto.decrypt(self.access_key_encrypted) if self.access_key_encrypted else ""

    def secret_key(self) -> str:
        return crypto.decrypt(self.secret_key_encrypted) if self.secret_key_encrypted else ""

    def key(self, *parts: str) -> str:
        """An object key inside this target's folder."""
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p and p.strip("/"))


class EtcdAccess(models.Model):
    """How Kubemate reaches a cluster's etcd to take snapshots: client URLs and, for TLS, the CA and a client
    certificate. The certificate and its key are encrypted; only the certificate's subject and expiry are shown."""

    cluster = models.OneToOneField(
        Cluster, verbose_name=_("cluster"), on_delete=models.CASCADE, related_name="etcd_access"
    )
    endpoints = ArrayField(models.CharField(max_length=300), verbose_name=_("endpoints"))
    ca_pem = models.TextField(_("certificate authority (PEM)"), blank=True)
    cert_encrypted = models.TextField(blank=True, editable=False)
    key_encrypted = models.TextField(blank=True, editable=False)
    cert_subject = models.CharField(_("client certificate"), max_length=300, blank=True, editable=False)
    cert_expires_at = models.DateTimeField(_("certificate expires"), null=True, blank=True, editable=False)
    last_checked_at = models.DateTimeField(_("last checked"), null=True, blank=True, editable=False)
    last_error = models.CharField(_("last error"), max_length=500, blank=True, editable=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("etcd access")
        verbose_name_plural = _("etcd access")

    def __str__(self) -> str:
        return f"etcd of {self.cluster}"

    def client_cert(self) -> str:
        return crypto.decrypt(self.cert_encrypted) if self.cert_encrypted else ""

    def client_key(self) -> str:
        return crypto.decrypt(self.key_encrypted) if self.key_encrypted else ""


class Kind(models.TextChoices):
    ETCD = "etcd", pgettext_lazy("backup kind", "etcd snapshot")
    VELERO = "velero", pgettext_lazy("backup kind", "Velero backup")
    DATABASE = "database", pgettext_lazy("backup kind", "Kubemate database")


class Plan(models.Model):
    """What is backed up, when, where to, how long it is kept, and how old its newest good backup may be.

    ``cron`` empty: on demand only. Scheduled etcd and database plans run through a django-celery-beat entry as
    ``created_by`` (the person who set the schedule); a Velero plan is a Velero ``Schedule`` object named
    ``velero_name`` that Velero itself runs. ``rpo_hours`` is the recovery point objective: the page shows the plan
    red, and the inspection raises a finding, when the newest good backup is older."""

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=63)
    cluster = models.ForeignKey(
        Cluster, verbose_name=_("cluster"), null=True, blank=True, on_delete=models.CASCADE, related_name="backup_plans"
    )
    target = models.ForeignKey(
        Target, verbose_name=_("storage target"), null=True, blank=True, on_delete=models.PROTECT, related_name="plans"
    )
    cron = models.CharField(_("schedule (cron)"), max_length=100, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    keep_count = models.PositiveIntegerField(
        _("keep at most"), default=7, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    keep_days = models.PositiveIntegerField(
        _("keep for days"), default=7, validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    rpo_hours = models.PositiveIntegerField(
        _("recovery point objective (hours)"), default=24, validators=[MinValueValidator(1), MaxValueValidator(8760)]
    )
    # Velero
    namespaces = ArrayField(models.CharField(max_length=63), default=list, blank=True, verbose_name=_("namespaces"))
    label_selector = models.CharField(_("label selector"), max_length=300, blank=True)
    snapshot_volumes = models.BooleanField(_("snapshot volumes"), default=False)
    velero_name = models.CharField(max_length=63, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("backup plan")
        verbose_name_plural = _("backup plans")
        ordering = ["kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="backups_plan_unique_name"),
            models.CheckConstraint(
                condition=Q(kind="database") | Q(cluster__isnull=False), name="backups_plan_has_a_cluster"
            ),
            models.CheckConstraint(
                condition=Q(kind="velero") | Q(target__isnull=False), name="backups_plan_has_a_target"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def beat_name(self) -> str:
        return f"backups:plan:{self.pk}"

    @property
    def ttl(self) -> timedelta:
        return timedelta(days=self.keep_days)


class Backup(models.Model):
    """One backup taken (etcd, database) or started from the console (Velero).

    A backup is good only when ``status`` is succeeded: its object was written whole (a single PUT or a completed
    multipart upload), read back and checked. A failed upload leaves no object listed as good. ``removed_at`` is set
    when retention deleted its object; the row stays as history."""

    class Status(models.TextChoices):
        RUNNING = "running", pgettext_lazy("backup status", "Running")
        SUCCEEDED = "succeeded", pgettext_lazy("backup status", "Succeeded")
        FAILED = "failed", pgettext_lazy("backup status", "Failed")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    plan = models.ForeignKey(
        Plan, verbose_name=_("plan"), null=True, blank=True, on_delete=models.SET_NULL, related_name="backups"
    )
    cluster = models.ForeignKey(
        Cluster, verbose_name=_("cluster"), null=True, blank=True, on_delete=models.CASCADE, related_name="backups"
    )
    target = models.ForeignKey(
        Target, verbose_name=_("storage target"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="backup")
    name = models.CharField(_("name"), max_length=200)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RUNNING)
    key = models.CharField(_("object"), max_length=500, blank=True)
    size_bytes = models.BigIntegerField(_("size"), null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    # etcd: what `etcdutl snapshot status` read from the snapshot before it was uploaded
    revision = models.BigIntegerField(_("revision"), null=True, blank=True)
    etcd_hash = models.BigIntegerField(null=True, blank=True)
    total_keys = models.IntegerField(_("keys"), null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    message = models.CharField(_("message"), max_length=500, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    removed_at = models.DateTimeField(_("removed"), null=True, blank=True)

    class Meta:
        verbose_name = _("backup")
        verbose_name_plural = _("backups")
        ordering = ["-started_at", "-pk"]
        indexes = [models.Index(fields=["plan", "status", "-started_at"], name="backups_plan_status_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_good(self) -> bool:
        return self.status == self.Status.SUCCEEDED and self.removed_at is None


class Restore(models.Model):
    """One restore: a Velero restore started from the console (the cluster holds its progress), or Kubemate's own
    database restored by ``manage.py restore_database``. ``preview`` is what the person saw before confirming (the
    objects to be created), ``changed`` what the restore reported it did; both are in the audit event too."""

    class Status(models.TextChoices):
        RUNNING = "running", pgettext_lazy("restore status", "Running")
        SUCCEEDED = "succeeded", pgettext_lazy("restore status", "Succeeded")
        PARTIAL = "partial", pgettext_lazy("restore status", "Partly failed")
        FAILED = "failed", pgettext_lazy("restore status", "Failed")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    cluster = models.ForeignKey(
        Cluster, verbose_name=_("cluster"), null=True, blank=True, on_delete=models.CASCADE, related_name="restores"
    )
    backup_name = models.CharField(_("backup"), max_length=200)
    name = models.CharField(_("name"), max_length=200)
    namespace_mapping = models.JSONField(_("namespaces"), default=dict, blank=True)
    preview = models.JSONField(default=dict, blank=True)
    changed = models.JSONField(default=dict, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RUNNING)
    message = models.CharField(_("message"), max_length=500, blank=True)
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="restore")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("restore")
        verbose_name_plural = _("restores")
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return self.name
