"""Roles built from capabilities, projects (tenants) and bindings. The audit log lives in apps/core/models.py."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from apps.accounts import capabilities
from apps.clusters.models import Cluster
from apps.clusters.values import DNS_LABEL_PATTERN

# Kubernetes object names derived from these must be DNS-1123 labels.
SLUG_HELP = _("Lower-case letters, digits and hyphens; starts and ends with a letter or digit.")


def validate_capabilities(codes: list[str]) -> None:
    unknown = sorted(set(codes) - set(capabilities.BY_CODE))
    if unknown:
        raise ValidationError(_("Unknown capabilities: %(codes)s") % {"codes": ", ".join(unknown)})


class Role(models.Model):
    """A platform role: a named set of capabilities, projected as ClusterRole ``kubemate:<slug>``.

    Built-in roles are created by a data migration and cannot be deleted or
    renamed; their capabilities may not be edited either, so that the built-in
    names keep their documented meaning.
    """

    slug = models.SlugField(_("identifier"), max_length=50, unique=True, help_text=SLUG_HELP)
    name_en = models.CharField(_("name (English)"), max_length=100)
    name_zh = models.CharField(_("name (Chinese)"), max_length=100)
    description_en = models.TextField(_("description (English)"), blank=True)
    description_zh = models.TextField(_("description (Chinese)"), blank=True)
    capabilities = ArrayField(
        models.CharField(max_length=64), default=list, blank=True, validators=[validate_capabilities]
    )
    builtin = models.BooleanField(_("built-in"), default=False, editable=False)

    class Meta:
        ordering = ["-builtin", "slug"]
        verbose_name = _("role")
        verbose_name_plural = _("roles")
        constraints = [
            models.CheckConstraint(condition=Q(slug__regex=DNS_LABEL_PATTERN), name="accounts_role_slug_dns")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.name_zh if (get_language() or "").startswith("zh") else self.name_en

    @property
    def description(self) -> str:
        return self.description_zh if (get_language() or "").startswith("zh") else self.description_en

    @property
    def cluster_role_name(self) -> str:
        return f"kubemate:{self.slug}"


class Project(models.Model):
    """A tenant: a named set of namespaces in one cluster. Members come from project-scoped bindings."""

    cluster = models.ForeignKey(Cluster, verbose_name=_("cluster"), on_delete=models.PROTECT, related_name="projects")
    slug = models.SlugField(_("identifier"), max_length=50, help_text=SLUG_HELP)
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    namespaces = ArrayField(models.CharField(max_length=63), verbose_name=_("namespaces"), default=list)

    class Meta:
        ordering = ["cluster__name", "name"]
        verbose_name = _("project")
        verbose_name_plural = _("projects")
        constraints = [models.UniqueConstraint(fields=["cluster", "slug"], name="accounts_project_unique_slug")]

    def __str__(self) -> str:
        return self.name


class Binding(models.Model):
    """Grants a role to a user or a group at platform, cluster or project scope.

    Projected per cluster as a PlatformBinding custom resource that owns the
    generated RoleBindings (one per project namespace) or ClusterRoleBinding.
    """

    class Scope(models.TextChoices):
        PLATFORM = "platform", _("Whole platform")
        CLUSTER = "cluster", _("Cluster")
        PROJECT = "project", _("Project")

    role = models.ForeignKey(Role, verbose_name=_("role"), on_delete=models.PROTECT, related_name="bindings")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="kubemate_bindings",
    )
    group = models.ForeignKey(
        Group,
        verbose_name=_("group"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="kubemate_bindings",
    )
    scope = models.CharField(_("scope"), max_length=16, choices=Scope.choices)
    cluster = models.ForeignKey(Cluster, verbose_name=_("cluster"), null=True, blank=True, on_delete=models.CASCADE)
    project = models.ForeignKey(
        Project, verbose_name=_("project"), null=True, blank=True, on_delete=models.CASCADE, related_name="bindings"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["scope", "id"]
        verbose_name = _("binding")
        verbose_name_plural = _("bindings")
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(group__isnull=True))
                | (Q(user__isnull=True) & Q(group__isnull=False)),
                name="accounts_binding_one_subject",
            ),
            models.CheckConstraint(
                condition=(Q(scope="platform") & Q(cluster__isnull=True) & Q(project__isnull=True))
                | (Q(scope="cluster") & Q(cluster__isnull=False) & Q(project__isnull=True))
                | (Q(scope="project") & Q(cluster__isnull=True) & Q(project__isnull=False)),
                name="accounts_binding_scope_target",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject_label} → {self.role} @ {self.scope_label}"

    @property
    def subject_label(self) -> str:
        return self.user.username if self.user_id else f"@{self.group.name}"

    @property
    def scope_label(self) -> str:
        if self.scope == self.Scope.PROJECT:
            return f"{self.project.cluster.name}/{self.project.name}"
        if self.scope == self.Scope.CLUSTER:
            return self.cluster.name
        return str(_("platform"))

    @property
    def k8s_name(self) -> str:
        return f"kubemate-b{self.pk}"


class Preference(models.Model):
    """One person's display settings. ``time_zone`` (an IANA name such as Asia/Shanghai) is the zone every time
    in the console is shown in; empty means the installation's (settings.TIME_ZONE). ``language`` is the one
    they last chose (``preferences.set_language``)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="preference"
    )
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True, default="")
    # The language the person last chose in the console: what mail sent to them later (a scheduled report) is
    # written in. Empty: not chosen yet.
    language = models.CharField(_("language"), max_length=10, blank=True, default="")

    class Meta:
        verbose_name = _("preference")
        verbose_name_plural = _("preferences")

    def __str__(self) -> str:
        return f"{self.user_id}: {self.time_zone or '-'}"


class ExternalIdentity(models.Model):
    """The single sign-on identity (the provider's ``iss`` and ``sub``) a console account signs in as.

    Made at a person's first OpenID Connect sign-in (apps/accounts/oidc/backend.py). The subject, not the user
    name or the e-mail address, finds the account again: a name reused at the provider never takes over someone
    else's account, and a local account is never taken over by a provider that claims its name."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identities")
    issuer = models.CharField(_("issuer"), max_length=255)
    subject = models.CharField(_("subject"), max_length=255)
    created_at = models.DateTimeField(_("linked at"), auto_now_add=True)
    last_sign_in_at = models.DateTimeField(_("last sign-in"), null=True, blank=True)

    class Meta:
        verbose_name = _("single sign-on identity")
        verbose_name_plural = _("single sign-on identities")
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="accounts_identity_unique")]

    def __str__(self) -> str:
        return f"{self.issuer} {self.subject}"
