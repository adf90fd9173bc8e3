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
