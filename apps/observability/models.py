"""Alert rules Kubemate writes to a cluster as PrometheusRule objects (see rules/), and notification receivers
written as AlertmanagerConfig objects (see notify/)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.clusters.models import Cluster


def duration(seconds: int) -> str:
    """Seconds as Prometheus writes a duration: 90 -> 1m30s, 3600 -> 1h, 0 -> 0s."""
    if not seconds:
        return "0s"
    parts, rest = [], seconds
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


class AlertRule(models.Model):
    """One alerting rule: the row is what the form edits; the cluster holds it as PrometheusRule
    ``kubemate-<name>`` in ``namespace`` (one group, one rule), which Prometheus loads.

    ``expr`` is the expression as written to the cluster: for a project's rule, already narrowed to its namespace
    (apps.observability.promql). ``template`` and ``params`` say which ready-made rule made it (rules/catalogue.py),
    so the form opens with the same choices; an empty template is a rule written in PromQL.
    """

    class Severity(models.TextChoices):
        CRITICAL = "critical", _("Critical")
        WARNING = "warning", _("Warning")
        INFO = "info", _("Information")

    cluster = models.ForeignKey(Cluster, verbose_name=_("cluster"), on_delete=models.CASCADE, related_name="+")
    namespace = models.CharField(_("namespace"), max_length=63)
    name = models.CharField(_("name"), max_length=50)
    alert = models.CharField(_("alert name"), max_length=100)
    expr = models.TextField(_("expression"))
    for_seconds = models.PositiveIntegerField(_("for"), default=300)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices, default=Severity.WARNING)
    summary = models.CharField(_("summary"), max_length=300)
    template = models.CharField(_("template"), max_length=40, blank=True)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["namespace", "name"]
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        constraints = [
            models.UniqueConstraint(fields=["cluster", "namespace", "name"], name="observability_rule_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def for_duration(self) -> str:
        return duration(self.for_seconds)

    @property
    def object_name(self) -> str:
        return f"kubemate-{self.name}"

    @property
    def group_name(self) -> str:
        """The rule group's name, which Prometheus reports back with the rule's state."""
        return f"kubemate.{self.namespace}.{self.name}"


class BuiltinRules(models.Model):
    """The built-in rule set (node, pod, workload, apiserver, certificates) installed in a cluster: one
    PrometheusRule ``kubemate-builtin`` in ``namespace``; ``version`` says which catalogue wrote it."""

    cluster = models.OneToOneField(
        Cluster, verbose_name=_("cluster"), on_delete=models.CASCADE, related_name="builtin_rules"
    )
    namespace = models.CharField(_("namespace"), max_length=63)
    version = models.PositiveSmallIntegerField(_("version"))
    installed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    installed_at = models.DateTimeField(_("installed"), auto_now=True)

    class Meta:
        verbose_name = _("built-in alert rules")
        verbose_name_plural = _("built-in alert rules")

    def __str__(self) -> str:
        return f"{self.cluster} {self.namespace}"


class Receiver(models.Model):
    """Where a project's alerts are sent: an email list, a generic webhook, or a DingTalk or WeCom group robot.

    ``options`` holds what may be shown (addresses, the mail relay, the webhook URL without credentials);
    ``secret_encrypted`` what may not (the SMTP password, the robot's webhook token or signing secret, a webhook's
    bearer token), encrypted like the cluster's credentials and never rendered back. ``relay_token_hash`` is the
    SHA-256 of the token Alertmanager presents when it hands a robot's alerts to Kubemate's relay.
    """

    class Kind(models.TextChoices):
        EMAIL = "email", _("Email")
        WEBHOOK = "webhook", _("Webhook")
        DINGTALK = "dingtalk", _("DingTalk robot")
        WECOM = "wecom", _("WeCom robot")

    project = models.ForeignKey(
        "accounts.Project", verbose_name=_("project"), on_delete=models.CASCADE, related_name="receivers"
    )
    name = models.CharField(_("name"), max_length=40)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    options = models.JSONField(_("options"), default=dict, blank=True)
    secret_encrypted = models.TextField(_("secret (encrypted)"), blank=True, editable=False)
    relay_token_hash = models.CharField(max_length=64, blank=True, editable=False)
    severities = ArrayField(models.CharField(max_length=10), verbose_name=_("severities"), default=list, blank=True)
    namespaces = ArrayField(models.CharField(max_length=63), verbose_name=_("namespaces"), default=list, blank=True)
    send_resolved = models.BooleanField(_("also when resolved"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["project", "name"]
        verbose_name = _("notification receiver")
        verbose_name_plural = _("notification receivers")
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="observability_receiver_unique")]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.name}"

    @property
    def object_name(self) -> str:
        """The AlertmanagerConfig (and its Secret) in each of the project's namespaces."""
        return f"kubemate-{self.project.slug}-{self.name}"[:63]

    @property
    def severity_labels(self) -> list[str]:
        """The chosen severities in the reader's words."""
        labels = dict(AlertRule.Severity.choices)
        return [str(labels.get(s, s)) for s in self.severities]

    @property
    def watched_namespaces(self) -> list[str]:
        """The namespaces whose alerts reach this receiver: those chosen, or all of the project's."""
        return [n for n in self.project.namespaces if not self.namespaces or n in self.namespaces]
