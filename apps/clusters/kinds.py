"""The kinds the inventory keeps, and where each lives in the Kubernetes API."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool

    @property
    def list_path(self) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        return f"{base}/{self.plural}"


KINDS: tuple[Kind, ...] = (
    Kind("Node", "", "v1", "nodes", False),
    Kind("Namespace", "", "v1", "namespaces", False),
    Kind("Deployment", "apps", "v1", "deployments", True),
    Kind("StatefulSet", "apps", "v1", "statefulsets", True),
    Kind("DaemonSet", "apps", "v1", "daemonsets", True),
    Kind("ReplicaSet", "apps", "v1", "replicasets", True),
    Kind("Job", "batch", "v1", "jobs", True),
    Kind("CronJob", "batch", "v1", "cronjobs", True),
    Kind("Pod", "", "v1", "pods", True),
    Kind("Service", "", "v1", "services", True),
    Kind("EndpointSlice", "discovery.k8s.io", "v1", "endpointslices", True),
    Kind("Ingress", "networking.k8s.io", "v1", "ingresses", True),
    Kind("HTTPRoute", "gateway.networking.k8s.io", "v1", "httproutes", True),
    Kind("ConfigMap", "", "v1", "configmaps", True),
    Kind("Secret", "", "v1", "secrets", True),
    Kind("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims", True),
    Kind("PersistentVolume", "", "v1", "persistentvolumes", False),
    Kind("StorageClass", "storage.k8s.io", "v1", "storageclasses", False),
    Kind("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers", True),
    Kind("Event", "", "v1", "events", True),
)
BY_KIND = {k.kind: k for k in KINDS}
