"""Compliance: where the audit log goes beyond the console (syslog receivers of the bank's SIEM), and four-eyes
approval of changes (approval policies and change requests)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import get_language
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
    # When the security contacts were told it fails (cleared, with a second mail, when it receives again).
    alerted_at = models.DateTimeField(_("failure reported"), null=True, blank=True, editable=False)
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


def labels_match(wanted: dict, cluster) -> bool:
    """Whether ``cluster`` carries every label of ``wanted``; its environment counts as the label env."""
    labels = {**(cluster.labels or {}), **({"env": cluster.environment} if cluster.environment else {})}
    return all(str(labels.get(key)) == str(value) for key, value in (wanted or {}).items())


class ScopedRule(models.Model):
    """What a policy and a window share: a name, the project they cover (or every project) and the labels of the
    clusters they cover (apps/compliance/approvals/windows.py: ``covering``)."""

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
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name

    def matches_cluster(self, cluster) -> bool:
        return labels_match(self.cluster_labels, cluster)


class ApprovalPolicy(ScopedRule):
    """Which changes need a second person's approval: chosen actions, in a project (or every project), on the
    clusters of an environment (cluster labels such as env=prod; none: every cluster)."""

    actions = ArrayField(models.CharField(max_length=40), verbose_name=_("actions"), default=list)
    expiry_hours = models.PositiveIntegerField(
        _("requests expire after (hours)"), default=24, validators=[MinValueValidator(1), MaxValueValidator(720)]
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("approval policy")
        verbose_name_plural = _("approval policies")


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

    action = models.CharField(_("action"), max_length=40)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    policy = models.ForeignKey(ApprovalPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    maker = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("requested by"), on_delete=models.PROTECT, related_name="+"
    )
    # None: a change to the whole platform (a platform role), which reaches every cluster.
    cluster = models.ForeignKey(
        "clusters.Cluster", verbose_name=_("cluster"), null=True, blank=True, on_delete=models.CASCADE
    )
    namespace = models.CharField(_("namespace"), max_length=63, blank=True)
    # Where else the change reaches (gates.Change.scope): the windows are asked again with it at approval.
    scope = models.JSONField(default=dict, blank=True)
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

    @property
    def namespaces_display(self) -> str:
        """The namespaces the change reaches: its own, or each of a restore's."""
        return ", ".join((self.scope or {}).get("namespaces") or ([self.namespace] if self.namespace else []))


WEEKDAY_NAMES = (
    _("Monday"),
    _("Tuesday"),
    _("Wednesday"),
    _("Thursday"),
    _("Friday"),
    _("Saturday"),
    _("Sunday"),
)


class ChangeWindow(ScopedRule):
    """When changes may be made. A *window* is a weekly period (days, from, to, in a time zone): where any window
    covers a project and its clusters, the gated actions are allowed inside a window only. A *freeze* is a span of
    dates when nothing changes there, automatic canary steps included (they pause). Break glass passes both."""

    class Kind(models.TextChoices):
        WINDOW = "window", _("Change window (changes allowed)")
        FREEZE = "freeze", _("Freeze (no changes)")

    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.WINDOW)
    weekdays = ArrayField(models.PositiveSmallIntegerField(), verbose_name=_("days"), default=list, blank=True)
    start_time = models.TimeField(_("from"), null=True, blank=True)
    end_time = models.TimeField(_("until"), null=True, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Shanghai")
    starts_at = models.DateTimeField(_("frozen from"), null=True, blank=True)
    ends_at = models.DateTimeField(_("frozen until"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        ordering = ["kind", "name"]
        verbose_name = _("change window")
        verbose_name_plural = _("change windows")

    @property
    def days_display(self) -> str:
        return ", ".join(str(WEEKDAY_NAMES[day]) for day in sorted(self.weekdays or []) if 0 <= day < 7)


class ReviewSettings(models.Model):
    """How a project's access is re-certified: who reviews it, and whether grants nobody confirmed expire."""

    project = models.OneToOneField(
        "accounts.Project", verbose_name=_("project"), on_delete=models.CASCADE, related_name="review_settings"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reviewer"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("Reviews this project's access besides the platform's access reviewers."),
    )
    grace_days = models.PositiveIntegerField(
        _("days to review"), default=14, validators=[MinValueValidator(1), MaxValueValidator(90)]
    )
    expire_unreviewed = models.BooleanField(
        _("unreviewed grants expire"),
        default=False,
        help_text=_("A grant nobody confirmed or revoked when the days to review are over is removed."),
    )

    class Meta:
        verbose_name = _("access review settings")
        verbose_name_plural = _("access review settings")

    def __str__(self) -> str:
        return str(self.project)


class AccessReview(models.Model):
    """One quarter's report of who holds which role in a project, line by line, kept after it is closed."""

    project = models.ForeignKey(
        "accounts.Project", verbose_name=_("project"), on_delete=models.CASCADE, related_name="access_reviews"
    )
    period = models.CharField(_("period"), max_length=16)  # 2026-Q4
    created_at = models.DateTimeField(_("made"), auto_now_add=True)
    due_at = models.DateTimeField(_("due"))
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    mailed_at = models.DateTimeField(_("mailed"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("access review")
        verbose_name_plural = _("access reviews")
        constraints = [models.UniqueConstraint(fields=["project", "period"], name="compliance_review_once")]

    def __str__(self) -> str:
        return f"{self.project} {self.period}"


class AccessReviewItem(models.Model):
    """One grant as it stood when the report was made, and the reviewer's decision on it."""

    class Decision(models.TextChoices):
        PENDING = "pending", _("Not reviewed yet")
        CONFIRMED = "confirmed", _("Confirmed")
        REVOKED = "revoked", _("Revoked")
        EXPIRED = "expired", _("Expired unreviewed")

    review = models.ForeignKey(AccessReview, on_delete=models.CASCADE, related_name="items")
    binding = models.ForeignKey("accounts.Binding", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    subject = models.CharField(_("who"), max_length=160)  # a user name, or @group
    members = models.JSONField(_("members"), default=list, blank=True)  # a group's members, when it was made
    role = models.CharField(_("role"), max_length=100)  # its English name when the report was made
    role_zh = models.CharField(max_length=100, blank=True)  # and its Chinese name
    capabilities = ArrayField(models.CharField(max_length=64), default=list)
    granted_at = models.DateTimeField(_("since"), null=True, blank=True)
    granted_by = models.CharField(_("granted by"), max_length=150, blank=True)
    last_login = models.DateTimeField(_("last sign-in"), null=True, blank=True)
    last_used = models.JSONField(_("last use"), default=dict, blank=True)  # capability -> ISO time
    decision = models.CharField(_("decision"), max_length=10, choices=Decision.choices, default=Decision.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.CharField(_("comment"), max_length=500, blank=True)

    class Meta:
        ordering = ["subject", "role"]
        verbose_name = _("access review line")
        verbose_name_plural = _("access review lines")

    def __str__(self) -> str:
        return f"{self.subject}: {self.role}"

    @property
    def role_name(self) -> str:
        """The role's name in the reader's language, as it was when the report was made."""
        return self.role_zh if self.role_zh and (get_language() or "").startswith("zh") else self.role
