"""Registered clusters and their encrypted credentials."""

from __future__ import annotations

import json

from django.contrib.postgres.indexes import GinIndex
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
    region = models.CharField(_("region"), max_length=63, blank=True)
    labels = models.JSONField(_("labels"), default=dict, blank=True)
    prometheus_url = models.URLField(_("Prometheus URL"), blank=True)
    alertmanager_url = models.URLField(_("Alertmanager URL"), blank=True)
    # Basic auth or a bearer token for Prometheus and Alertmanager, encrypted like the kubeconfig (JSON inside);
    # set through the registry form, never rendered back. ``endpoint_auth`` reads them.
    prometheus_auth_encrypted = models.TextField(_("Prometheus credentials (encrypted)"), blank=True, editable=False)
    alertmanager_auth_encrypted = models.TextField(
        _("Alertmanager credentials (encrypted)"), blank=True, editable=False
    )
    # The log store: VictoriaLogs (LogsQL) or Loki (LogQL), one door (apps/observability/logstore.py).
    logs_url = models.URLField(_("log store URL"), blank=True)
    logs_backend = models.CharField(
        _("log store"),
        max_length=16,
        choices=[("victorialogs", "VictoriaLogs"), ("loki", "Loki")],
        default="victorialogs",
    )
    jaeger_url = models.URLField(_("Jaeger URL"), blank=True)
    # Credentials (and the tenant) of the log store and Jaeger, encrypted like Prometheus's.
    logs_auth_encrypted = models.TextField(_("log store credentials (encrypted)"), blank=True, editable=False)
    jaeger_auth_encrypted = models.TextField(_("Jaeger credentials (encrypted)"), blank=True, editable=False)
    # Link-local and cloud metadata addresses are refused unless an administrator allows them here.
    velero_namespace = models.CharField(
        _("Velero namespace"),
        max_length=63,
        blank=True,
        help_text=_("Where Velero runs in this cluster, e.g. velero; empty when it does not."),
    )
    allow_link_local = models.BooleanField(_("allow link-local addresses"), default=False)
    kubernetes_version = models.CharField(_("Kubernetes version"), max_length=32, blank=True, editable=False)
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

    ENDPOINTS = ("prometheus", "alertmanager", "logs", "jaeger")
    # Endpoints that serve several tenants: the tenant is sent as a header (X-Scope-OrgID for Loki, AccountID and
    # ProjectID for VictoriaLogs, x-tenant for Jaeger) and kept with the credentials.
    TENANT_ENDPOINTS = ("logs", "jaeger")

    def set_endpoint_auth(
        self, endpoint: str, *, username: str = "", password: str = "", token: str = "", tenant: str = ""
    ) -> None:
        """Basic auth (``username``, ``password``) or a bearer ``token`` for ``endpoint``, and the ``tenant`` of
        a multi-tenant store; nothing clears them."""
        if endpoint not in self.ENDPOINTS or (tenant and endpoint not in self.TENANT_ENDPOINTS):
            raise ValueError(endpoint)
        given = {"username": username, "password": password, "token": token, "tenant": tenant}
        secret = {k: v for k, v in given.items() if v}
        setattr(self, f"{endpoint}_auth_encrypted", crypto.encrypt(json.dumps(secret)) if secret else "")

    def endpoint_auth(self, endpoint: str) -> dict:
        """The credentials for ``endpoint`` ({} when none): keys ``username``/``password`` or ``token``, and
        ``tenant``."""
        if endpoint not in self.ENDPOINTS:
            raise ValueError(endpoint)
        stored = getattr(self, f"{endpoint}_auth_encrypted")
        return json.loads(crypto.decrypt(stored)) if stored else {}


class Resource(models.Model):
    """One Kubernetes object as last seen by the inventory sync (apps/clusters/inventory).

    Pages read these rows; no web request lists a cluster. ``object`` is the
    object without ``managedFields``; for Secrets it holds metadata and type
    only, never data. ``status``/``summary`` are computed by
    ``inventory.summaries`` for lists and filters.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="resources")
    kind = models.CharField(max_length=40)
    api_group = models.CharField(max_length=100, blank=True)
    namespace = models.CharField(max_length=63, blank=True)
    name = models.CharField(max_length=253)
    uid = models.UUIDField()
    resource_version = models.CharField(max_length=32)
    labels = models.JSONField(default=dict)
    owner_kind = models.CharField(max_length=40, blank=True)
    owner_name = models.CharField(max_length=253, blank=True)
    owner_uid = models.UUIDField(null=True, blank=True)
    status = models.CharField(max_length=40, blank=True)
    summary = models.JSONField(default=dict)
    object = models.JSONField(default=dict)
    created = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("resource")
        verbose_name_plural = _("resources")
        constraints = [
            models.UniqueConstraint(fields=["cluster", "kind", "namespace", "name"], name="clusters_resource_unique")
        ]
        indexes = [
            models.Index(fields=["cluster", "kind", "namespace", "name"], name="clusters_res_kind_ns_name"),
            models.Index(fields=["cluster", "kind", "status"], name="clusters_res_kind_status"),
            models.Index(fields=["cluster", "owner_uid"], name="clusters_res_owner"),
            models.Index(fields=["cluster", "uid"], name="clusters_res_uid"),
            GinIndex(fields=["name"], name="clusters_res_name_trgm", opclasses=["gin_trgm_ops"]),
            GinIndex(fields=["labels"], name="clusters_res_labels", opclasses=["jsonb_path_ops"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


class SyncState(models.Model):
    """Where the sync of one kind in one cluster stands: the watch position and when it last heard anything."""

    class State(models.TextChoices):
        LISTING = "listing", _("Listing")
        WATCHING = "watching", _("Up to date")
        DISCONNECTED = "disconnected", _("Disconnected")
        FORBIDDEN = "forbidden", _("Not allowed")

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="sync_states")
    kind = models.CharField(max_length=40)
    state = models.CharField(max_length=16, choices=State.choices, default=State.LISTING)
    resource_version = models.CharField(max_length=32, blank=True)
    listed_at = models.DateTimeField(null=True, blank=True)
    heard_at = models.DateTimeField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)
    object_count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("sync state")
        verbose_name_plural = _("sync states")
        constraints = [models.UniqueConstraint(fields=["cluster", "kind"], name="clusters_syncstate_unique")]

    def __str__(self) -> str:
        return f"{self.cluster} {self.kind}: {self.state}"
