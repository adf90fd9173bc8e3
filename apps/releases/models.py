"""Releases: an app deployed from an image into one namespace of a project, and its revisions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Project
from apps.clusters.values import DNS_LABEL_PATTERN


class Release(models.Model):
    """An app in a project namespace, described by ``spec`` (see render.py for its keys).

    ``spec`` is what the form edits and what every revision snapshots. Values the
    user marks sensitive are kept in ``spec["secret_env"]`` as Fernet tokens
    (apps.core.crypto): they are decrypted only to render the release's own
    Kubernetes Secret and are never shown back. The Kubernetes objects carry the
    label ``kubemate.io/release=<name>``; the cluster stays the source of truth.
    """

    project = models.ForeignKey(Project, verbose_name=_("project"), on_delete=models.PROTECT, related_name="releases")
    namespace = models.CharField(_("namespace"), max_length=63)
    name = models.CharField(_("name"), max_length=63)
    spec = models.JSONField(_("specification"), default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["namespace", "name"]
        verbose_name = _("release")
        verbose_name_plural = _("releases")
        constraints = [
            models.UniqueConstraint(fields=["project", "namespace", "name"], name="releases_release_unique_name"),
            models.CheckConstraint(condition=Q(name__regex=DNS_LABEL_PATTERN), name="releases_release_name_dns"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def cluster(self):
        return self.project.cluster


class Revision(models.Model):
    """One deploy or rollback of a release: the spec it applied, who, when, and how the rollout ended.

    ``spec`` is a copy of Release.spec at that time (sensitive values stay
    encrypted); ``spec_hash`` is a keyed digest of the rendered manifests, so a
    redeploy of the same spec is recognised without comparing secrets in clear.
    """

    class Result(models.TextChoices):
        APPLIED = "applied", _("Applied, rolling out")
        SUCCEEDED = "succeeded", _("Rolled out")
        FAILED = "failed", _("Failed")

    release = models.ForeignKey(Release, verbose_name=_("release"), on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField(_("number"))
    spec = models.JSONField(_("specification"), default=dict)
    spec_hash = models.CharField(max_length=64)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("actor"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("time"), auto_now_add=True)
    result = models.CharField(_("result"), max_length=16, choices=Result.choices, default=Result.APPLIED)
    message = models.TextField(_("message"), blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    rollback_of = models.PositiveIntegerField(null=True, blank=True)
    job = models.ForeignKey("core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-number"]
        verbose_name = _("revision")
        verbose_name_plural = _("revisions")
        constraints = [models.UniqueConstraint(fields=["release", "number"], name="releases_revision_unique_number")]

    def __str__(self) -> str:
        return f"{self.release.name} #{self.number}"


class Canary(models.Model):
    """A second version of a release running next to the stable one, with part of the traffic routed to it.

    The stable version keeps its names (Deployment and Service ``<name>``); the
    canary runs as Deployment and Service ``<name>-canary``. The release's
    HTTPRoute splits traffic by backend weights (``mode`` weight: ``weight``
    percent to the canary) or sends requests carrying a header or a cookie to the
    canary (``mode`` header / cookie: ``match_name`` = ``match_value``). ``spec``
    is the release spec the canary runs and the one a promotion deploys as the
    new stable revision. At most one canary of a release is active at a time.
    """

    class Mode(models.TextChoices):
        WEIGHT = "weight", _("Share of traffic (grey)")
        HEADER = "header", _("Requests with a header")
        COOKIE = "cookie", _("Requests with a cookie")

    class State(models.TextChoices):
        ACTIVE = "active", _("Running")
        PROMOTED = "promoted", _("Promoted")
        ABORTED = "aborted", _("Aborted")

    class Analysis(models.TextChoices):
        OFF = "off", _("Manual")
        RUNNING = "running", _("Automatic steps running")
        PAUSED = "paused", _("Automatic steps paused")
        WAITING = "waiting", _("At 100 %, waiting for a person to promote")

    release = models.ForeignKey(Release, verbose_name=_("release"), on_delete=models.CASCADE, related_name="canaries")
    spec = models.JSONField(_("specification"), default=dict)
    replicas = models.PositiveIntegerField(_("replicas"), default=1)
    mode = models.CharField(_("mode"), max_length=8, choices=Mode.choices, default=Mode.WEIGHT)
    weight = models.PositiveSmallIntegerField(_("weight"), default=10)
    match_name = models.CharField(_("header or cookie name"), max_length=100, blank=True)
    match_value = models.CharField(_("header or cookie value"), max_length=200, blank=True)
    state = models.CharField(_("state"), max_length=8, choices=State.choices, default=State.ACTIVE)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("started by")
    )
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    revision = models.ForeignKey(
        Revision, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("promoted as")
    )
    # Automatic steps (grey releases on a cluster with Prometheus): every ``analysis_interval`` seconds the query
    # runs; at or below ``analysis_max`` the share moves to the next step (and, with ``auto_promote``, a passing
    # check at 100 % promotes); above it (or no answer) counts as a failure, and ``analysis_failure_limit``
    # failures in a row abort the canary. The steps act as ``analysis_by``.
    analysis = models.CharField(_("automatic steps"), max_length=8, choices=Analysis.choices, default=Analysis.OFF)
    analysis_query = models.TextField(_("Prometheus query"), blank=True)
    analysis_max = models.FloatField(_("highest acceptable value"), null=True, blank=True)
    analysis_interval = models.PositiveIntegerField(_("seconds between checks"), default=60)
    analysis_failure_limit = models.PositiveSmallIntegerField(_("failed checks before abort"), default=2)
    auto_promote = models.BooleanField(_("promote automatically"), default=False)
    analysis_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    next_check_at = models.DateTimeField(_("next check"), null=True, blank=True)
    failures = models.PositiveSmallIntegerField(_("failed checks in a row"), default=0)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("canary")
        verbose_name_plural = _("canaries")
        constraints = [
            models.UniqueConstraint(
                fields=["release"], condition=Q(state="active"), name="releases_canary_one_active_per_release"
            ),
            models.CheckConstraint(condition=Q(weight__lte=100), name="releases_canary_weight_percent"),
        ]

    def __str__(self) -> str:
        return f"{self.release.name} canary {self.spec.get('image', '')}"

    @property
    def automatic(self) -> bool:
        return self.analysis != self.Analysis.OFF


class CanaryStep(models.Model):
    """One action on a canary (start, step, promote, abort): who, when, and the traffic share it set."""

    class Action(models.TextChoices):
        START = "start", _("Started")
        STEP = "step", _("Weight changed")
        PROMOTE = "promote", _("Promoted")
        ABORT = "abort", _("Aborted")
        PAUSE = "pause", _("Automatic steps paused")
        RESUME = "resume", _("Automatic steps resumed")

    canary = models.ForeignKey(Canary, verbose_name=_("canary"), on_delete=models.CASCADE, related_name="steps")
    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    weight = models.PositiveSmallIntegerField(_("weight"), null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("actor"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("time"), auto_now_add=True)
    automatic = models.BooleanField(_("automatic"), default=False)
    analysis_check = models.ForeignKey(
        "CanaryCheck", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("check")
    )
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("canary step")
        verbose_name_plural = _("canary steps")

    def __str__(self) -> str:
        return f"{self.canary} {self.action}"


class CanaryCheck(models.Model):
    """One run of a canary's Prometheus query: the value it gave (or why it gave none) and whether it passed."""

    class Outcome(models.TextChoices):
        PASSED = "passed", _("Within the limit")
        ABOVE = "above", _("Above the limit")
        NO_DATA = "no_data", _("No data")
        ERROR = "error", _("Prometheus did not answer")

    canary = models.ForeignKey(Canary, verbose_name=_("canary"), on_delete=models.CASCADE, related_name="checks")
    created_at = models.DateTimeField(_("time"), auto_now_add=True)
    weight = models.PositiveSmallIntegerField(_("weight"))
    value = models.FloatField(_("value"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=8, choices=Outcome.choices)
    detail = models.CharField(_("detail"), max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("canary check")
        verbose_name_plural = _("canary checks")

    def __str__(self) -> str:
        return f"{self.canary} check {self.value}"

    @property
    def passed(self) -> bool:
        return self.outcome == self.Outcome.PASSED
