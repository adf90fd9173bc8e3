"""Releases: an app deployed from an image into one namespace of a project, and its revisions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Project

DNS_LABEL_REGEX = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


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
            models.CheckConstraint(condition=Q(name__regex=DNS_LABEL_REGEX), name="releases_release_name_dns"),
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
