"""The one table of Kubernetes kinds Kubemate reads and writes, and the one builder of their API paths.

Each ``Kind`` says where it lives in the API (group, version, plural), whether it
is namespaced, whether the inventory keeps it, and the capability that lets a
person read it. ``path`` validates names before it builds a path, so no request
can be steered elsewhere by a name taken from a URL or a form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.clusters.values import is_dns_label

WORKLOADS_VIEW = "workloads.view"
NODES_VIEW = "nodes.view"
SECRETS_VIEW_METADATA = "secrets.view_metadata"


@dataclass(frozen=True)
class Kind:
    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool
    # Kept in the inventory (listed and watched into Resource rows).
    synced: bool = False
    # The capability that lets a person see objects of this kind in the console ("" for Kubemate's own kinds).
    capability: str = ""
    # What the console calls one object and several (translated when shown); the kind itself when not set.
    label: object = ""
    label_plural: object = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_path(self) -> str:
        """The collection across all namespaces (or of a cluster-scoped kind)."""
        return path(self)


def _inventory(kind: str, api_version: str, plural: str, namespaced: bool, label, label_plural, **more) -> Kind:
    group, _slash, version = api_version.rpartition("/")
    if not more.get("capability"):
        more["capability"] = WORKLOADS_VIEW if namespaced or kind == "Namespace" else NODES_VIEW
    return Kind(kind, group, version, plural, namespaced, True, label=label, label_plural=label_plural, **more)


# The one table: the inventory's kinds first, in the order the sync lists them, then the kinds Kubemate
# writes or asks about without keeping them in the inventory.
TABLE: tuple[Kind, ...] = (
    _inventory(
        "Node",
        "v1",
        "nodes",
        False,
        pgettext_lazy("Kubernetes kind", "Node"),
        pgettext_lazy("Kubernetes kind", "Nodes"),
    ),
    _inventory(
        "Namespace",
        "v1",
        "namespaces",
        False,
        pgettext_lazy("Kubernetes kind", "Namespace"),
        pgettext_lazy("Kubernetes kind", "Namespaces"),
    ),
    _inventory(
        "Deployment",
        "apps/v1",
        "deployments",
        True,
        pgettext_lazy("Kubernetes kind", "Deployment"),
        pgettext_lazy("Kubernetes kind", "Deployments"),
    ),
    _inventory(
        "StatefulSet",
        "apps/v1",
        "statefulsets",
        True,
        pgettext_lazy("Kubernetes kind", "Stateful set"),
        pgettext_lazy("Kubernetes kind", "Stateful sets"),
    ),
    _inventory(
        "DaemonSet",
        "apps/v1",
        "daemonsets",
        True,
        pgettext_lazy("Kubernetes kind", "Daemon set"),
        pgettext_lazy("Kubernetes kind", "Daemon sets"),
    ),
    _inventory(
        "ReplicaSet",
        "apps/v1",
        "replicasets",
        True,
        pgettext_lazy("Kubernetes kind", "Replica set"),
        pgettext_lazy("Kubernetes kind", "Replica sets"),
    ),
    _inventory(
        "Job",
        "batch/v1",
        "jobs",
        True,
        pgettext_lazy("Kubernetes kind", "Job"),
        pgettext_lazy("Kubernetes kind", "Jobs"),
    ),
    _inventory(
        "CronJob",
        "batch/v1",
        "cronjobs",
        True,
        pgettext_lazy("Kubernetes kind", "Cron job"),
        pgettext_lazy("Kubernetes kind", "Cron jobs"),
    ),
    _inventory(
        "Pod", "v1", "pods", True, pgettext_lazy("Kubernetes kind", "Pod"), pgettext_lazy("Kubernetes kind", "Pods")
    ),
    _inventory(
        "Service",
        "v1",
        "services",
        True,
        pgettext_lazy("Kubernetes kind", "Service"),
        pgettext_lazy("Kubernetes kind", "Services"),
    ),
    _inventory(
        "EndpointSlice",
        "discovery.k8s.io/v1",
        "endpointslices",
        True,
        pgettext_lazy("Kubernetes kind", "Endpoint slice"),
        pgettext_lazy("Kubernetes kind", "Endpoint slices"),
    ),
    _inventory(
        "Ingress",
        "networking.k8s.io/v1",
        "ingresses",
        True,
        pgettext_lazy("Kubernetes kind", "Ingress"),
        pgettext_lazy("Kubernetes kind", "Ingresses"),
    ),
    _inventory(
        "HTTPRoute",
        "gateway.networking.k8s.io/v1",
        "httproutes",
        True,
        pgettext_lazy("Kubernetes kind", "HTTP route"),
        pgettext_lazy("Kubernetes kind", "HTTP routes"),
    ),
    _inventory(
        "Gateway",
        "gateway.networking.k8s.io/v1",
        "gateways",
        True,
        pgettext_lazy("Kubernetes kind", "Gateway"),
        pgettext_lazy("Kubernetes kind", "Gateways"),
    ),
    _inventory(
        "ConfigMap",
        "v1",
        "configmaps",
        True,
        pgettext_lazy("Kubernetes kind", "Config map"),
        pgettext_lazy("Kubernetes kind", "Config maps"),
    ),
    _inventory(
        "Secret",
        "v1",
        "secrets",
        True,
        pgettext_lazy("Kubernetes kind", "Secret"),
        pgettext_lazy("Kubernetes kind", "Secrets"),
        capability=SECRETS_VIEW_METADATA,
    ),
    _inventory(
        "PersistentVolumeClaim",
        "v1",
        "persistentvolumeclaims",
        True,
        pgettext_lazy("Kubernetes kind", "Volume claim"),
        pgettext_lazy("Kubernetes kind", "Volume claims"),
    ),
    _inventory(
        "PersistentVolume",
        "v1",
        "persistentvolumes",
        False,
        pgettext_lazy("Kubernetes kind", "Persistent volume"),
        pgettext_lazy("Kubernetes kind", "Persistent volumes"),
    ),
    _inventory(
        "StorageClass",
        "storage.k8s.io/v1",
        "storageclasses",
        False,
        pgettext_lazy("Kubernetes kind", "Storage class"),
        pgettext_lazy("Kubernetes kind", "Storage classes"),
    ),
    _inventory(
        "HorizontalPodAutoscaler",
        "autoscaling/v2",
        "horizontalpodautoscalers",
        True,
        pgettext_lazy("Kubernetes kind", "Autoscaler"),
        pgettext_lazy("Kubernetes kind", "Autoscalers"),
    ),
    # Read by the inspection (single-replica workloads no budget protects); kept after the kinds the pages list.
    _inventory(
        "PodDisruptionBudget",
        "policy/v1",
        "poddisruptionbudgets",
        True,
        pgettext_lazy("Kubernetes kind", "Disruption budget"),
        pgettext_lazy("Kubernetes kind", "Disruption budgets"),
    ),
    _inventory(
        "Event",
        "v1",
        "events",
        True,
        pgettext_lazy("Kubernetes kind", "Event"),
        pgettext_lazy("Kubernetes kind", "Events"),
    ),
    Kind("ServiceAccount", "", "v1", "serviceaccounts", True),
    Kind("ClusterRole", "rbac.authorization.k8s.io", "v1", "clusterroles", False),
    Kind("ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", "clusterrolebindings", False),
    Kind("Role", "rbac.authorization.k8s.io", "v1", "roles", True),
    Kind("RoleBinding", "rbac.authorization.k8s.io", "v1", "rolebindings", True),
    Kind("CustomResourceDefinition", "apiextensions.k8s.io", "v1", "customresourcedefinitions", False),
    Kind("PlatformUser", "kubemate.io", "v1alpha1", "platformusers", False),
    Kind("PlatformRole", "kubemate.io", "v1alpha1", "platformroles", False),
    Kind("PlatformBinding", "kubemate.io", "v1alpha1", "platformbindings", False),
    Kind("SelfSubjectAccessReview", "authorization.k8s.io", "v1", "selfsubjectaccessreviews", False),
    Kind("SelfSubjectReview", "authentication.k8s.io", "v1", "selfsubjectreviews", False),
    # The scheduler's and controller-manager's leader-election leases (kube-system), read by the inspection.
    Kind("Lease", "coordination.k8s.io", "v1", "leases", True),
    Kind("NodeMetrics", "metrics.k8s.io", "v1beta1", "nodes", False, capability=NODES_VIEW),
    Kind("PodMetrics", "metrics.k8s.io", "v1beta1", "pods", True, capability=WORKLOADS_VIEW),
    # The Prometheus Operator's objects Kubemate writes: alert rules and notification routes.
    Kind("PrometheusRule", "monitoring.coreos.com", "v1", "prometheusrules", True),
    Kind("AlertmanagerConfig", "monitoring.coreos.com", "v1alpha1", "alertmanagerconfigs", True),
    # Tekton's objects, where a cluster serves them: CI/CD renders repository builds as Pipelines and PipelineRuns
    # and follows their TaskRuns.
    Kind("Pipeline", "tekton.dev", "v1", "pipelines", True),
    Kind("PipelineRun", "tekton.dev", "v1", "pipelineruns", True),
    Kind("TaskRun", "tekton.dev", "v1", "taskruns", True),
    # Velero's objects, where a cluster runs Velero: backups, their schedules and restores are created in Velero's
    # namespace; download requests give signed links to a backup's contents and logs in its storage location.
    Kind("Backup", "velero.io", "v1", "backups", True),
    Kind("Restore", "velero.io", "v1", "restores", True),
    Kind("Schedule", "velero.io", "v1", "schedules", True),
    Kind("BackupStorageLocation", "velero.io", "v1", "backupstoragelocations", True),
    Kind("DownloadRequest", "velero.io", "v1", "downloadrequests", True),
    # Namespaces' quotas (the GPU pages read requests.nvidia.com/gpu live, as the person: not in the inventory).
    Kind("ResourceQuota", "", "v1", "resourcequotas", True),
)

KINDS: tuple[Kind, ...] = tuple(k for k in TABLE if k.synced)
BY_KIND: dict[str, Kind] = {k.kind: k for k in TABLE}


class InvalidName(ValueError):
    """A name or namespace that cannot be an object's name; carries a sentence."""


# Kubernetes object names are path segments: never "." or "..", never "/" or "%" (apimachinery's
# IsValidPathSegmentName). Kubemate further refuses anything outside the characters real names use
# (RBAC names may hold ":" and "@"), so a name from a URL or form cannot add a query or a fragment.
_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.:@]{0,251}[A-Za-z0-9])?$")
_SUBRESOURCE = re.compile(r"^[a-z]+$")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise InvalidName(_("%(name)r is not a valid Kubernetes object name.") % {"name": str(name)[:80]})
    return name


def check_namespace(namespace: str) -> str:
    if not isinstance(namespace, str) or not is_dns_label(namespace):
        raise InvalidName(_("%(name)r is not a valid namespace name.") % {"name": str(namespace)[:80]})
    return namespace


def path(kind: Kind | str, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
    """The API path of a collection, an object, or an object's subresource, with names validated.

    A namespaced kind without a namespace gives the collection across all namespaces;
    a namespace given for a cluster-scoped kind is ignored.
    """
    spec = BY_KIND[kind] if isinstance(kind, str) else kind
    base = f"/apis/{spec.group}/{spec.version}" if spec.group else f"/api/{spec.version}"
    if spec.namespaced and namespace:
        base += f"/namespaces/{check_namespace(namespace)}"
    result = f"{base}/{spec.plural}"
    if name:
        result += f"/{check_name(name)}"
    if sub:
        if not name or not _SUBRESOURCE.fullmatch(sub):
            raise InvalidName(_("%(name)r is not a valid subresource.") % {"name": sub[:40]})
        result += f"/{sub}"
    return result
