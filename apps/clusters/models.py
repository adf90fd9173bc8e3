"""Registered clusters and their encrypted credentials."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core import crypto


class Cluster(models.Model):
    """A Kubernetes cluster Kubemate manages.

    ``kubeconfig_encrypted`` holds Kubemate's own credentials for the cluster,
    encrypted with the rotating key set; it is never rendered back. Only
    ``clusters/kube.py`` reads it.
    """

    name = models.CharField(_("name"), max_length=63, unique=True)
    api_server = models.URLField(_("API server"), max_length=255)
    kubeconfig_encrypted = models.TextField(_("credentials (encrypted)"), editable=False)
    environment = models.CharField(_("environment"), max_length=32, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("cluster")
        verbose_name_plural = _("clusters")

    def __str__(self) -> str:
        return self.name

    def set_kubeconfig(self, kubeconfig_yaml: str) -> None:
        self.kubeconfig_encrypted = crypto.encrypt(kubeconfig_yaml)

    def kubeconfig(self) -> str:
        return crypto.decrypt(self.kubeconfig_encrypted)
