"""Cluster-level reads for the registry: version and node readiness."""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes import client

from apps.clusters.kube import api_client, call
from apps.clusters.models import Cluster


@dataclass(frozen=True)
class ClusterSummary:
    version: str
    nodes: int
    ready_nodes: int


def read_summary(cluster: Cluster) -> ClusterSummary:
    with api_client(cluster) as api:
        version = call(cluster, client.VersionApi(api).get_code).git_version
        nodes = call(cluster, client.CoreV1Api(api).list_node, limit=1000).items
    ready = sum(
        1 for node in nodes for cond in (node.status.conditions or []) if cond.type == "Ready" and cond.status == "True"
    )
    return ClusterSummary(version=version, nodes=len(nodes), ready_nodes=ready)


KUBEMATE_SERVICE_ACCOUNT = "kubemate"
IDENTITY_MANIFEST = "deploy/kubernetes/kubemate-rbac.yaml"
TOKEN_SECONDS = 365 * 24 * 3600


def install_identity(admin: Cluster, manifest_documents: list[dict]) -> str:
    """With an administrator's credentials, apply Kubemate's identity manifest and return a kubeconfig
    for Kubemate's own ServiceAccount (token authentication, the cluster's CA)."""
    import base64

    import yaml

    from apps.clusters.kube import MANAGED_NAMESPACE, apply, request, resource_path

    with api_client(admin) as api:
        for document in manifest_documents:
            apply(api, admin, document)
        token_path = resource_path("ServiceAccount", KUBEMATE_SERVICE_ACCOUNT, MANAGED_NAMESPACE) + "/token"
        token = request(
            api,
            admin,
            "POST",
            token_path,
            body={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": TOKEN_SECONDS},
            },
        )["status"]["token"]
        configuration = api.configuration
        with open(configuration.ssl_ca_cert, "rb") as ca:
            ca_data = base64.b64encode(ca.read()).decode()
        server = configuration.host
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": admin.name, "cluster": {"server": server, "certificate-authority-data": ca_data}}],
            "users": [{"name": "kubemate", "user": {"token": token}}],
            "contexts": [{"name": admin.name, "context": {"cluster": admin.name, "user": "kubemate"}}],
            "current-context": admin.name,
        }
    )
