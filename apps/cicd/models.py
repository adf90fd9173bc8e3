"""CI/CD state: where images go (registries), what they are built on (approved base images), what they are
checked against (vulnerability databases, each project's policy and exceptions), and the pipelines with their
runs, stages, artefacts and scan findings.

A pipeline lives in one namespace of a project: that place decides who sees it and acts on it (``access.py``),
where its in-cluster builds run and where its release is deployed. Secrets (registry passwords, git tokens,
webhook secrets) are stored encrypted (``core.crypto``) and never shown again.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.accounts.models import Project
from apps.clusters.models import Cluster
from apps.clusters.values import DNS_LABEL_PATTERN
from apps.core.models import Job


class Severity(models.TextChoices):
    CRITICAL = "critical", _("Critical")
    HIGH = "high", _("High")
    MEDIUM = "medium", _("Medium")
    LOW = "low", _("Low")
    UNKNOWN = "unknown", pgettext_lazy("vulnerability severity", "Unknown")


# Highest first: a policy blocks on a severity and everything above it.
SEVERITY_ORDER = [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.UNKNOWN]


def at_or_above(severity: str) -> list[str]:
    """The severities a policy that blocks on ``severity`` blocks on."""
    if severity not in SEVERITY_ORDER:
        return []
    return [str(s) for s in SEVERITY_ORDER[: SEVERITY_ORDER.index(severity) + 1]]


class Registry(models.Model):
    """An OCI registry images are pushed to and base images are read from.

    Configured for a whole cluster (every project of it may push there) or for one project. ``insecure`` means
    plain HTTP (or a certificate that is not checked): for a registry on a trusted network only, shown as such.
    ``ca_pem`` is the registry's certificate authority when it is the bank's own.
    """

    name = models.CharField(_("name"), max_length=63, unique=True)
    host = models.CharField(
        _("address"), max_length=255, help_text=_("Host and port, e.g. harbor.bank.local or 10.0.0.5:5000.")
    )
    prefix = models.CharField(
        _("path prefix"), max_length=200, blank=True, help_text=_("A project or folder in the registry, e.g. payments.")
    )
    insecure = models.BooleanField(_("plain HTTP (insecure)"), default=False)
    ca_pem = models.TextField(_("certificate authority (PEM)"), blank=True)
    username = models.CharField(_("user name"), max_length=200, blank=True)
    password_encrypted = models.TextField(_("password (encrypted)"), blank=True, editable=False)
    cluster = models.ForeignKey(
        Cluster, verbose_name=_("cluster"), null=True, blank=True, on_delete=models.CASCADE, related_name="registries"
    )
    project = models.ForeignKey(
        Project, verbose_name=_("project"), null=True, blank=True, on_delete=models.CASCADE, related_name="registries"
    )
    last_checked_at = models.DateTimeField(_("last checked"), null=True, blank=True, editable=False)
    last_error = models.CharField(_("last error"), max_length=500, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("registered"), auto_now_add=True)

    class Meta:
        verbose_name = _("registry")
        verbose_name_plural = _("registries")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(cluster__isnull=False) | Q(project__isnull=False), name="cicd_registry_has_a_place"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def repository(self, path: str) -> str:
        """The full repository name of ``path`` in this registry (host, prefix, path)."""
        parts = [self.host.rstrip("/"), self.prefix.strip("/"), path.strip("/")]
        return "/".join(p for p in parts if p)


class BaseImage(models.Model):
    """An approved base image of a project's catalogue: jar pipelines build on one of these only.

    ``digest`` is pinned when the image is approved: a tag moved later in the registry does not change what
    pipelines build on until someone approves it again.
    """

    project = models.ForeignKey(Project, verbose_name=_("project"), on_delete=models.CASCADE, related_name="bases")
    name = models.CharField(_("name"), max_length=100)
    reference = models.CharField(_("image"), max_length=400, help_text=_("e.g. harbor.bank.local/base/jre17:1.4"))
    digest = models.CharField(_("digest"), max_length=80, editable=False)
    description = models.CharField(_("description"), max_length=300, blank=True)
    active = models.BooleanField(_("approved"), default=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(_("approved"), default=timezone.now)

    class Meta:
        verbose_name = _("base image")
        verbose_name_plural = _("base images")
        ordering = ["project", "name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="cicd_base_unique_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def pinned(self) -> str:
        """The reference with its approved digest: what a build pulls."""
        return f"{self.reference.split('@')[0]}@{self.digest}"


class VulnDatabase(models.Model):
    """An offline vulnerability database imported as a bundle (OSV records per ecosystem). The newest ready one is
    what scans use; older ones are kept until replaced, so a scan in flight keeps its files."""

    imported_at = models.DateTimeField(_("imported"), default=timezone.now)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    data_date = models.DateTimeField(_("data as of"))
    filename = models.CharField(_("file"), max_length=255)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    size = models.BigIntegerField(_("size"))
    ecosystems = models.JSONField(_("ecosystems"), default=dict, help_text="{ecosystem: record count}")
    folder = models.CharField(_("folder"), max_length=100, editable=False)

    class Meta:
        verbose_name = _("vulnerability database")
        verbose_name_plural = _("vulnerability databases")
        ordering = ["-imported_at"]
        get_latest_by = "imported_at"

    def __str__(self) -> str:
        return f"{self.filename} ({self.data_date:%Y-%m-%d})"

    @property
    def records(self) -> int:
        return sum(self.ecosystems.values())


class Policy(models.Model):
    """A project's CI/CD rules: which scan findings block a deploy, how many runs at once, how long runs are kept."""

    class Block(models.TextChoices):
        CRITICAL = "critical", _("Block on critical")
        HIGH = "high", _("Block on high or critical")
        MEDIUM = "medium", _("Block on medium or above")
        NONE = "none", _("Warn only, never block")

    project = models.OneToOneField(
        Project, verbose_name=_("project"), on_delete=models.CASCADE, related_name="cicd_policy"
    )
    block_on = models.CharField(_("scan policy"), max_length=10, choices=Block.choices, default=Block.HIGH)
    max_concurrent_runs = models.PositiveSmallIntegerField(_("runs at once"), default=2)
    keep_days = models.PositiveSmallIntegerField(_("keep runs for (days)"), default=30)
    keep_runs = models.PositiveSmallIntegerField(_("always keep the last runs"), default=10)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("CI/CD policy")
        verbose_name_plural = _("CI/CD policies")
        constraints = [
            models.CheckConstraint(condition=Q(max_concurrent_runs__gte=1), name="cicd_policy_at_least_one_run"),
            models.CheckConstraint(condition=Q(keep_runs__gte=1), name="cicd_policy_keeps_a_run"),
        ]

    def __str__(self) -> str:
        return str(self.project)


class ScanException(models.Model):
    """A vulnerability a project accepts for a while: findings it matches do not block a deploy until it expires.

    Granted by a person holding ``cicd.exceptions`` with a reason; revoked early by the same capability. Both are
    audited."""

    project = models.ForeignKey(
        Project, verbose_name=_("project"), on_delete=models.CASCADE, related_name="scan_exceptions"
    )
    vuln_id = models.CharField(_("vulnerability"), max_length=100)
    package = models.CharField(_("package"), max_length=255, blank=True, help_text=_("Empty: any package."))
    reason = models.CharField(_("reason"), max_length=500)
    expires_at = models.DateTimeField(_("expires"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("granted"), auto_now_add=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("scan exception")
        verbose_name_plural = _("scan exceptions")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.vuln_id

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()

    def matches(self, vuln_ids: set[str], package: str) -> bool:
        return self.vuln_id in vuln_ids and (not self.package or self.package == package)


class Pipeline(models.Model):
    """From a source (an uploaded jar/war, or a git repository) to an image in a registry and a release.

    Stages: source, build, scan, push, deploy. The build of a jar is done here without a daemon (the base image
    plus a layer holding the jar); the build of a repository runs in the cluster (a Tekton PipelineRun when the
    cluster has Tekton, else a Kubernetes Job).
    """

    class Kind(models.TextChoices):
        JAR = "jar", _("Uploaded jar or war")
        REPOSITORY = "repository", _("Git repository with a Dockerfile")

    class DeployMode(models.TextChoices):
        NONE = "none", _("Do not deploy")
        DIRECT = "direct", _("Deploy as a new revision")
        CANARY = "canary", _("Deploy as a canary")

    project = models.ForeignKey(Project, verbose_name=_("project"), on_delete=models.PROTECT, related_name="pipelines")
    namespace = models.CharField(_("namespace"), max_length=63)
    name = models.CharField(_("name"), max_length=63)
    description = models.CharField(_("description"), max_length=300, blank=True)
    kind = models.CharField(_("source"), max_length=12, choices=Kind.choices, default=Kind.JAR)
    # Repository source.
    git_url = models.CharField(_("repository address"), max_length=500, blank=True)
    git_branch = models.CharField(_("branch"), max_length=200, blank=True, default="main")
    git_username = models.CharField(_("repository user name"), max_length=200, blank=True)
    git_token_encrypted = models.TextField(_("repository token (encrypted)"), blank=True, editable=False)
    dockerfile = models.CharField(_("Dockerfile"), max_length=300, blank=True, default="Dockerfile")
    context_dir = models.CharField(_("build context"), max_length=300, blank=True, default=".")
    # Jar build.
    base_image = models.ForeignKey(
        BaseImage, verbose_name=_("base image"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    template = models.CharField(_("start template"), max_length=30, default="java-jar")
    jvm_options = models.CharField(_("JVM options"), max_length=500, blank=True, default="-XX:MaxRAMPercentage=75.0")
    env = models.JSONField(_("environment"), default=list, blank=True)
    # Image.
    registry = models.ForeignKey(
        Registry, verbose_name=_("registry"), on_delete=models.PROTECT, related_name="pipelines"
    )
    repository = models.CharField(_("image repository"), max_length=200)
    # Deploy.
    deploy_mode = models.CharField(_("deploy"), max_length=10, choices=DeployMode.choices, default=DeployMode.DIRECT)
    release_name = models.CharField(_("release"), max_length=63, blank=True)
    port = models.PositiveIntegerField(_("container port"), default=8080)
    canary_weight = models.PositiveSmallIntegerField(_("canary traffic (%)"), default=10)
    # Triggers.
    webhook_secret_encrypted = models.TextField(_("webhook secret (encrypted)"), blank=True, editable=False)
    webhook_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("webhook runs as"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    schedule = models.CharField(_("schedule (cron)"), max_length=100, blank=True)
    schedule_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("schedule runs as"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("pipeline")
        verbose_name_plural = _("pipelines")
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="cicd_pipeline_unique_name"),
            models.CheckConstraint(condition=Q(name__regex=DNS_LABEL_PATTERN), name="cicd_pipeline_name_dns"),
            models.CheckConstraint(
                condition=Q(canary_weight__gte=1, canary_weight__lte=99), name="cicd_pipeline_canary_weight"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def cluster(self):
        return self.project.cluster

    @property
    def image_repository(self) -> str:
        return self.registry.repository(self.repository)

    @property
    def release(self) -> str:
        return self.release_name or self.name


class Upload(models.Model):
    """A jar or war handed to a pipeline; a run builds from one upload. The file lives in the CI/CD storage
    folder under its SHA-256 and goes with the retention of the runs that used it."""

    pipeline = models.ForeignKey(Pipeline, verbose_name=_("pipeline"), on_delete=models.CASCADE, related_name="uploads")
    filename = models.CharField(_("file"), max_length=255)
    size = models.BigIntegerField(_("size"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    path = models.CharField(_("stored as"), max_length=300, editable=False)
    version = models.CharField(_("version"), max_length=100, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(_("uploaded"), default=timezone.now)

    class Meta:
        verbose_name = _("upload")
        verbose_name_plural = _("uploads")
        ordering = ["-uploaded_at"]

    def __str__(self) -> str:
        return self.filename


class Run(models.Model):
    """One pass of a pipeline, run by a Celery Job as the person who started it (or the trigger's owner)."""

    class Status(models.TextChoices):
        QUEUED = "queued", pgettext_lazy("pipeline run status", "Queued")
        RUNNING = "running", pgettext_lazy("pipeline run status", "Running")
        SUCCEEDED = "succeeded", pgettext_lazy("pipeline run status", "Succeeded")
        FAILED = "failed", pgettext_lazy("pipeline run status", "Failed")
        BLOCKED = "blocked", pgettext_lazy("pipeline run status", "Blocked by policy")
        CANCELLED = "cancelled", pgettext_lazy("pipeline run status", "Cancelled")

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    class Trigger(models.TextChoices):
        MANUAL = "manual", _("Started by hand")
        UPLOAD = "upload", _("Upload")
        WEBHOOK = "webhook", _("Push webhook")
        SCHEDULE = "schedule", _("Schedule")
        RERUN = "rerun", _("Re-run")

    pipeline = models.ForeignKey(Pipeline, verbose_name=_("pipeline"), on_delete=models.CASCADE, related_name="runs")
    number = models.PositiveIntegerField(_("number"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(_("trigger"), max_length=10, choices=Trigger.choices, default=Trigger.MANUAL)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("runs as"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    job = models.ForeignKey(
        Job, verbose_name=_("job"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    upload = models.ForeignKey(
        Upload, verbose_name=_("upload"), null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    rerun_of = models.ForeignKey(
        "self", verbose_name=_("re-run of"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    commit = models.CharField(_("commit"), max_length=64, blank=True)
    commit_message = models.CharField(_("commit message"), max_length=300, blank=True)
    image = models.CharField(_("image"), max_length=400, blank=True)
    digest = models.CharField(_("digest"), max_length=80, blank=True)
    counts = models.JSONField(_("findings"), default=dict, blank=True)
    release = models.ForeignKey(
        "releases.Release",
        verbose_name=_("release"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    revision = models.PositiveIntegerField(_("revision"), null=True, blank=True)
    message = models.CharField(_("message"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("pipeline run")
        verbose_name_plural = _("pipeline runs")
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["pipeline", "number"], name="cicd_run_unique_number")]
        indexes = [models.Index(fields=["pipeline", "-number"]), models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.pipeline.name} #{self.number}"

    @property
    def is_finished(self) -> bool:
        return self.status not in self.ACTIVE

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class Stage(models.Model):
    """One stage of a run, with its own status, times, log and detail (the in-cluster build's tasks, the scan's
    counts, the pushed digest, the deployed revision)."""

    class Key(models.TextChoices):
        SOURCE = "source", pgettext_lazy("pipeline stage", "Source")
        BUILD = "build", pgettext_lazy("pipeline stage", "Build")
        SCAN = "scan", pgettext_lazy("pipeline stage", "Scan")
        PUSH = "push", pgettext_lazy("pipeline stage", "Push")
        DEPLOY = "deploy", pgettext_lazy("pipeline stage", "Deploy")

    ORDER = [Key.SOURCE, Key.BUILD, Key.SCAN, Key.PUSH, Key.DEPLOY]

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("pipeline stage status", "Waiting")
        RUNNING = "running", pgettext_lazy("pipeline stage status", "Running")
        SUCCEEDED = "succeeded", pgettext_lazy("pipeline stage status", "Passed")
        WARNING = "warning", pgettext_lazy("pipeline stage status", "Passed with warnings")
        FAILED = "failed", pgettext_lazy("pipeline stage status", "Failed")
        SKIPPED = "skipped", pgettext_lazy("pipeline stage status", "Skipped")
        CANCELLED = "cancelled", pgettext_lazy("pipeline stage status", "Cancelled")

    run = models.ForeignKey(Run, verbose_name=_("run"), on_delete=models.CASCADE, related_name="stages")
    key = models.CharField(_("stage"), max_length=10, choices=Key.choices)
    position = models.PositiveSmallIntegerField(_("position"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    message = models.CharField(_("message"), max_length=500, blank=True)
    # [[ISO time, level, text], ...]: the runner's own sentences are deferred (read in the reader's language), tool
    # output is kept as the tool wrote it; bounded by runner.MAX_LOG_LINES.
    log = models.JSONField(_("log"), default=list, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    class Meta:
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="cicd_stage_unique_key")]

    def __str__(self) -> str:
        return self.key

    @property
    def duration(self):
        if self.started_at:
            return (self.finished_at or timezone.now()) - self.started_at
        return None


class Artifact(models.Model):
    """What a run made and keeps: the image (digest only: it lives in the registry), the scan report, the SBOM,
    the image tarball that was scanned. Files live in the CI/CD storage folder until the run's retention ends."""

    class Kind(models.TextChoices):
        IMAGE = "image", _("Image")
        SCAN = "scan", _("Scan report")
        SBOM = "sbom", _("SBOM (CycloneDX)")
        TARBALL = "tarball", _("Image archive")

    run = models.ForeignKey(Run, verbose_name=_("run"), on_delete=models.CASCADE, related_name="artifacts")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=400)
    path = models.CharField(_("stored as"), max_length=300, blank=True, editable=False)
    size = models.BigIntegerField(_("size"), default=0)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    # The retention pass removed the file (the row stays for the run's history).
    removed_at = models.DateTimeField(_("removed"), null=True, blank=True)

    class Meta:
        verbose_name = _("artefact")
        verbose_name_plural = _("artefacts")
        ordering = ["run", "kind"]
        constraints = [models.UniqueConstraint(fields=["run", "kind"], name="cicd_artifact_unique_kind")]

    def __str__(self) -> str:
        return self.name


class Finding(models.Model):
    """One vulnerability in one package of a scanned image."""

    run = models.ForeignKey(Run, verbose_name=_("run"), on_delete=models.CASCADE, related_name="findings")
    vuln_id = models.CharField(_("vulnerability"), max_length=100)
    aliases = ArrayField(models.CharField(max_length=100), verbose_name=_("aliases"), default=list, blank=True)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices, default=Severity.UNKNOWN)
    score = models.FloatField(_("CVSS score"), null=True, blank=True)
    ecosystem = models.CharField(_("ecosystem"), max_length=50)
    package = models.CharField(_("package"), max_length=255)
    version = models.CharField(_("version"), max_length=100)
    fixed = models.CharField(_("fixed in"), max_length=200, blank=True)
    source = models.CharField(_("found in"), max_length=500, blank=True)
    summary = models.CharField(_("summary"), max_length=500, blank=True)
    blocking = models.BooleanField(_("blocks the deploy"), default=False)
    exception = models.ForeignKey(
        ScanException,
        verbose_name=_("exception"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="findings",
    )

    class Meta:
        verbose_name = _("vulnerability finding")
        verbose_name_plural = _("vulnerability findings")
        ordering = ["run", "id"]
        indexes = [models.Index(fields=["run", "severity"])]

    def __str__(self) -> str:
        return f"{self.vuln_id} {self.package}@{self.version}"
