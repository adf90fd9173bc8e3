"""Compliance: where the audit log goes beyond the console (syslog receivers of the bank's SIEM), and four-eyes
approval of changes (approval policies and change requests)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class SyslogDestination(models.Model):
    """A syslog receiver every audit event is sent to, in order, from the event after ``cursor``.

    The audit log itself is the queue: events stay in PostgreSQL, and ``cursor`` is the chain position (``seq``)
    of the last event the receiver confirmed (forwarding/syslog.py says how a TCP or TLS receiver confirms). A
    receiver that is down holds the cursor where it is; when it is back, delivery resumes from there, in order.
    """

    class Transport(models.TextChoices):
        TLS = "tls", _("TCP with TLS (RFC 5425)")
        TCP = "tcp", _("TCP without encryption")
        UDP = "udp", _("UDP (RFC 5426; a lost datagram is not sent again)")

    class Format(models.TextChoices):
        JSON = "json", _("JSON")
        CEF = "cef", _("CEF (ArcSight Common Event Format)")

    name = models.CharField(_("name"), max_length=63, unique=True)
    host = models.CharField(_("host"), max_length=255)
    port = models.PositiveIntegerField(_("port"), validators=[MinValueValidator(1), MaxValueValidator(65535)])
    transport = models.CharField(_("transport"), max_length=8, choices=Transport.choices, default=Transport.TLS)
    ca_pem = models.TextField(_("CA certificates (PEM)"), blank=True)
    server_name = models.CharField(_("name in the receiver's certificate"), max_length=255, blank=True)
    format = models.CharField(_("format"), max_length=8, choices=Format.choices, default=Format.JSON)
    enabled = models.BooleanField(_("enabled"), default=True)
    cursor = models.BigIntegerField(_("last event delivered"), default=0)
    delivered_at = models.DateTimeField(_("last delivery"), null=True, blank=True)
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    # A deferred sentence (apps/core/deferred.py), read in the reader's language.
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("syslog destination")
        verbose_name_plural = _("syslog destinations")

    def __str__(self) -> str:
        return self.name

    @property
    def last_error_text(self) -> str:
        """The last error in the reader's language."""
        from apps.core import deferred

        return deferred.render(self.last_error)


class ApprovalPolicy(models.Model):
    """Which changes need a second person's approval: chosen actions, in a project (or every project), on the
    clusters of an environment (cluster labels such as env=prod; none: every cluster)."""

    name = models.CharField(_("name"), max_length=80, unique=True)
    project = models.ForeignKey(
        "accounts.Project",
        verbose_name=_("project"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        help_text=_("Empty: every project, and changes outside projects (nodes)."),
    )
    cluster_labels = models.JSONField(
        _("cluster labels"), default=dict, blank=True, help_text=_("Clusters with all of these labels, e.g. env=prod.")
    )
    actions = ArrayField(models.CharField(max_length=40), verbose_name=_("actions"), default=list)
    expiry_hours = models.PositiveIntegerField(
        _("requests expire after (hours)"), default=24, validators=[MinValueValidator(1), MaxValueValidator(720)]
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("approval policy")
        verbose_name_plural = _("approval policies")

    def __str__(self) -> str:
        return self.name

    def matches_cluster(self, cluster) -> bool:
        labels = {**(cluster.labels or {}), **({"env": cluster.environment} if cluster.environment else {})}
        return all(str(labels.get(key)) == str(value) for key, value in (self.cluster_labels or {}).items())


class ChangeRequest(models.Model):
    """A change a maker asked for that waits for a checker (ITIL: a normal change), or one applied at once by break
    glass (an emergency change). It records exactly what will be applied: the rendered objects the checker reads
    (``manifests``, secrets masked; ``manifests_hash``), the applier's ``payload`` and the ``base`` state it was made
    against. Approval applies the payload as the maker, once, and only if nothing moved since (else: stale)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for approval")
        APPLYING = "applying", _("Being applied")
        APPLIED = "applied", _("Approved and applied")
        REJECTED = "rejected", _("Rejected")
        EXPIRED = "expired", _("Expired")
        STALE = "stale", _("Refused: the cluster changed since the request")
        FAILED = "failed", _("Approved, but applying failed")
        CANCELLED = "cancelled", _("Withdrawn by the maker")
        BREAK_GLASS = "break_glass", _("Applied without approval (break glass)")

    OPEN = (Status.PENDING,)

    action = models.CharField(_("action"), max_length=40)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    policy = models.ForeignKey(ApprovalPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    maker = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("requested by"), on_delete=models.PROTECT, related_name="+"
    )
    cluster = models.ForeignKey("clusters.Cluster", verbose_name=_("cluster"), on_delete=models.CASCADE)
    namespace = models.CharField(_("namespace"), max_length=63, blank=True)
    kind = models.CharField(_("kind"), max_length=63)
    name = models.CharField(_("name"), max_length=253)
    summary = models.TextField(_("change"))  # a deferred sentence
    reason = models.TextField(_("reason"), blank=True)
    ticket = models.CharField(_("ticket"), max_length=64, blank=True)
    payload = models.JSONField(default=dict)
    manifests = models.JSONField(default=list)
    manifests_hash = models.CharField(max_length=64)
    diff = models.TextField(blank=True)
    base = models.JSONField(default=dict)
    created_at = models.DateTimeField(_("requested"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    comment = models.TextField(_("comment"), blank=True)
    applied_at = models.DateTimeField(_("applied"), null=True, blank=True)
    outcome = models.TextField(_("outcome"), blank=True)  # a deferred sentence

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("change request")
        verbose_name_plural = _("change requests")
        indexes = [models.Index(fields=["status", "expires_at"], name="compliance_cr_open")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.kind}/{self.name}"
