"""Inspection state: what is inspected (host agents, databases), how (templates, schedules), and what was found
(runs, their check outcomes and findings). The catalogue of checks itself is code (``checks/``); rows name checks
by id."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.clusters.models import Cluster
from apps.core import deferred
from apps.core.models import Job
from apps.inspection.checks.base import Domain, Severity


class HostAgent(models.Model):
    """A Kubemate host agent (agent/) that Kubemate pulls host facts from over HTTPS.

    The token is stored encrypted (``core.crypto``) and never shown again; the agent's self-signed certificate is
    pinned by its SHA-256 fingerprint, taken at registration (trust on first use, shown to the person registering)
    or typed from the agent's log. ``cluster`` (optional) places the host for tenancy: only people who see the
    cluster's nodes see its host findings.
    """

    name = models.CharField(_("name"), max_length=63, unique=True)
    url = models.URLField(_("address"), max_length=255)
    token_encrypted = models.TextField(_("token (encrypted)"), editable=False)
    fingerprint = models.CharField(_("certificate fingerprint (SHA-256)"), max_length=95, blank=True)
    cluster = models.ForeignKey(
        Cluster, verbose_name=_("cluster"), null=True, blank=True, on_delete=models.SET_NULL, related_name="agents"
    )
    node_name = models.CharField(_("node"), max_length=253, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    last_seen_at = models.DateTimeField(_("last answered"), null=True, blank=True, editable=False)
    last_error = models.CharField(_("last error"), max_length=500, blank=True, editable=False)
    agent_version = models.CharField(_("agent version"), max_length=32, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("registered"), auto_now_add=True)

    class Meta:
        verbose_name = _("host agent")
        verbose_name_plural = _("host agents")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DatabaseTarget(models.Model):
    """A database inspected through a read-only account (PostgreSQL or MySQL/MariaDB).

    The password is stored encrypted and never shown again. ``cluster``/``namespace`` (optional) place the
    database for tenancy: a project user sees findings of the databases placed in their namespaces.
    """

    class Engine(models.TextChoices):
        POSTGRESQL = "postgresql", "PostgreSQL"
        MYSQL = "mysql", "MySQL / MariaDB"

    name = models.CharField(_("name"), max_length=63, unique=True)
    engine = models.CharField(_("engine"), max_length=16, choices=Engine.choices)
    host = models.CharField(_("host"), max_length=253)
    port = models.PositiveIntegerField(_("port"))
    database = models.CharField(_("database"), max_length=63)
    username = models.CharField(_("user"), max_length=63)
    password_encrypted = models.TextField(_("password (encrypted)"), blank=True, editable=False)
    use_tls = models.BooleanField(_("use TLS"), default=False)
    cluster = models.ForeignKey(
        Cluster, verbose_name=_("cluster"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    namespace = models.CharField(_("namespace"), max_length=63, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    last_seen_at = models.DateTimeField(_("last answered"), null=True, blank=True, editable=False)
    last_error = models.CharField(_("last error"), max_length=500, blank=True, editable=False)
    server_version = models.CharField(_("server version"), max_length=64, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("registered"), auto_now_add=True)

    class Meta:
        verbose_name = _("database")
        verbose_name_plural = _("databases")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Template(models.Model):
    """A set of checks run together (built-ins: daily cluster health, weekly security, host baseline, database).

    ``checks`` are catalogue ids; ``clusters`` empty means every registered cluster; ``thresholds`` override the
    checks' defaults (``pvc.full_percent``: 90, ...). Built-in templates may be copied, not edited or deleted.
    """

    slug = models.SlugField(_("key"), max_length=63, unique=True)
    name = models.CharField(_("name"), max_length=100)
    description = models.CharField(_("description"), max_length=500, blank=True)
    builtin = models.BooleanField(_("built in"), default=False, editable=False)
    checks = ArrayField(models.CharField(max_length=80), verbose_name=_("checks"), default=list)
    clusters = models.ManyToManyField(Cluster, verbose_name=_("clusters"), blank=True, related_name="+")
    all_agents = models.BooleanField(_("every host agent"), default=True)
    agents = models.ManyToManyField(HostAgent, verbose_name=_("host agents"), blank=True, related_name="+")
    all_databases = models.BooleanField(_("every database"), default=True)
    databases = models.ManyToManyField(DatabaseTarget, verbose_name=_("databases"), blank=True, related_name="+")
    thresholds = models.JSONField(_("thresholds"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("inspection template")
        verbose_name_plural = _("inspection templates")
        ordering = ["-builtin", "name"]

    def __str__(self) -> str:
        return deferred.render(self.name)


class Schedule(models.Model):
    """A template run on a cron schedule by Celery beat (``periodic_task``, django-celery-beat), acting as
    ``owner`` (who created it; their permissions bound what the run sees), emailing the report to ``recipients``.

    A recipient who is a Kubemate user (by email address) reads the email in their own language; others in
    ``language``. ``kind`` is an inspection, or the managers' weekly report (no template).
    """

    class Kind(models.TextChoices):
        INSPECTION = "inspection", _("Inspection")
        WEEKLY = "weekly", _("Managers' weekly report")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.INSPECTION)
    template = models.ForeignKey(
        Template, verbose_name=_("template"), null=True, blank=True, on_delete=models.CASCADE, related_name="schedules"
    )
    clusters = models.ManyToManyField(Cluster, verbose_name=_("clusters"), blank=True, related_name="+")
    cron = models.CharField(_("schedule (cron)"), max_length=100)
    timezone = models.CharField(_("time zone"), max_length=63, default="UTC")
    enabled = models.BooleanField(_("enabled"), default=True)
    recipients = ArrayField(models.EmailField(), verbose_name=_("recipients"), default=list, blank=True)
    language = models.CharField(_("language for other recipients"), max_length=10, default="zh-hans")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("runs as"), on_delete=models.PROTECT)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_run_at = models.DateTimeField(_("last run"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("schedule")
        verbose_name_plural = _("schedules")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Run(models.Model):
    """One inspection: the checks of ``template`` against its targets, run as ``job`` acting as ``actor``.

    Every outcome and finding is kept, so a report compares with ``previous`` (the last finished run of the same
    template): findings are new, unchanged, or fixed. ``scores`` are per domain, 0–100. ``email_state`` follows
    the report's email for scheduled runs.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        FINISHED = "finished", pgettext_lazy("inspection run status", "Finished")
        FAILED = "failed", _("Failed")

    class Email(models.TextChoices):
        NONE = "", _("Not emailed")
        PENDING = "pending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    template = models.ForeignKey(Template, verbose_name=_("template"), on_delete=models.PROTECT, related_name="runs")
    schedule = models.ForeignKey(
        Schedule, verbose_name=_("schedule"), null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("run by"), null=True, blank=True, on_delete=models.SET_NULL
    )
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    clusters = models.ManyToManyField(Cluster, verbose_name=_("clusters"), blank=True, related_name="+")
    scores = models.JSONField(_("scores"), default=dict, blank=True)  # {"cluster": 92, "hosts": 100, ...}
    counts = models.JSONField(_("counts"), default=dict, blank=True)  # {"new": 3, "fixed": 1, "unchanged": 7, ...}
    message = models.CharField(_("message"), max_length=500, blank=True)
    email_state = models.CharField(_("email"), max_length=16, choices=Email.choices, default=Email.NONE, blank=True)
    email_attempts = models.PositiveSmallIntegerField(default=0)
    email_error = models.CharField(_("email error"), max_length=500, blank=True)
    emailed_at = models.DateTimeField(_("emailed"), null=True, blank=True)

    class Meta:
        verbose_name = _("inspection run")
        verbose_name_plural = _("inspection runs")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["template", "status", "-created_at"], name="inspection_run_template")]

    def __str__(self) -> str:
        return f"{self.template} #{self.pk}"


class Outcome(models.Model):
    """One check against one target in one run: passed, failed (with findings), or not checked (why)."""

    class Status(models.TextChoices):
        PASSED = "passed", _("Passed")
        FAILED = "failed", _("Failed")
        NOT_CHECKED = "not_checked", _("Not checked")

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="outcomes")
    check_id = models.CharField(max_length=80)
    domain = models.CharField(max_length=16, choices=Domain.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    target = models.CharField(max_length=200)  # "cluster:prod", "agent:node-1", "database:orders"
    cluster = models.ForeignKey(Cluster, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices)
    found = models.PositiveIntegerField(default=0)
    reason = models.CharField(max_length=500, blank=True)  # deferred sentence when not checked
    seconds = models.FloatField(default=0)

    class Meta:
        indexes = [models.Index(fields=["run", "domain"], name="inspection_outcome_run")]

    def __str__(self) -> str:
        return f"{self.check_id} {self.target}: {self.status}"


class Finding(models.Model):
    """One thing wrong (or fixed since the previous run) found by one check on one subject.

    ``fingerprint`` (check, target, subject) is how runs are compared. ``change``: new since the previous run,
    unchanged, or fixed (found by the previous run, not by this one, and the check looked this time).
    ``message`` is a deferred sentence; ``namespace`` places it for tenancy (blank: cluster- or host-wide).
    """

    class Change(models.TextChoices):
        NEW = "new", _("New")
        UNCHANGED = "unchanged", _("Unchanged")
        FIXED = "fixed", _("Fixed")

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="findings")
    check_id = models.CharField(max_length=80)
    domain = models.CharField(max_length=16, choices=Domain.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    target = models.CharField(max_length=200)
    cluster = models.ForeignKey(Cluster, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    namespace = models.CharField(max_length=63, blank=True)
    subject = models.CharField(max_length=400)
    message = models.TextField()
    facts = models.JSONField(default=dict, blank=True)
    fingerprint = models.CharField(max_length=64)
    change = models.CharField(max_length=16, choices=Change.choices)

    class Meta:
        indexes = [
            models.Index(fields=["run", "change"], name="inspection_finding_change"),
            models.Index(fields=["run", "fingerprint"], name="inspection_finding_fp"),
        ]

    def __str__(self) -> str:
        return f"{self.check_id} {self.subject}"


class WeeklyReport(models.Model):
    """The managers' weekly report: per cluster, capacity and usage trend, releases and rollbacks, failed jobs,
    alerts, and the inspection score with its trend, gathered once (``data``: plain numbers and ids, no sentences,
    so the page and the email word it in the reader's language) and emailed with its PDF."""

    schedule = models.ForeignKey(
        Schedule, verbose_name=_("schedule"), null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("made for"), null=True, blank=True, on_delete=models.SET_NULL
    )
    period_start = models.DateTimeField(_("from"))
    period_end = models.DateTimeField(_("to"))
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    clusters = models.ManyToManyField(Cluster, verbose_name=_("clusters"), blank=True, related_name="+")
    data = models.JSONField(default=dict, blank=True)
    email_state = models.CharField(_("email"), max_length=16, choices=Run.Email.choices, default="", blank=True)
    email_attempts = models.PositiveSmallIntegerField(default=0)
    email_error = models.CharField(_("email error"), max_length=500, blank=True)
    emailed_at = models.DateTimeField(_("emailed"), null=True, blank=True)

    class Meta:
        verbose_name = _("weekly report")
        verbose_name_plural = _("weekly reports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.period_start:%Y-%m-%d} – {self.period_end:%Y-%m-%d}"


class Measurement(models.Model):
    """A number a check measured, kept so a later run can speak of growth (a table's size, a log volume).

    ``target`` is the runner's target label (``database:orders``), ``key`` what was measured
    (``table:public.payments:bytes``). Written by the runner with the run's findings; read through
    ``Context.history``.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="measurements")
    target = models.CharField(max_length=200)
    key = models.CharField(max_length=300)
    value = models.FloatField()
    measured_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["target", "key", "-measured_at"], name="inspection_measure_key")]

    def __str__(self) -> str:
        return f"{self.target} {self.key} = {self.value}"
