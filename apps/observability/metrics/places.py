"""Whose charts a person may see: the places that have charts, and one answer for cards, pages and links.

A chart's data is a person's to see when they hold ``metrics.view`` where it lives: a namespace's charts in that
namespace; a node's and the cluster-wide series (nodes, the API server: no namespace label) only when they see
the whole cluster (``metrics.view`` and ``nodes.view`` at cluster or platform scope). That last rule is decided
here, explicitly, not left to the PromQL rewrite, which can only narrow a query to namespaces.
"""

from __future__ import annotations

from django.urls import reverse

from apps.accounts import access
from apps.accounts.capabilities import METRICS_QUERY, METRICS_VIEW, WORKLOADS_VIEW

# Kinds whose pages carry charts, by the inventory's URL slug, and the catalogue's place for each.
PLACES = {
    "Node": "node",
    "Namespace": "namespace",
    "Deployment": "deployment",
    "StatefulSet": "statefulset",
    "DaemonSet": "daemonset",
    "Pod": "pod",
}
SLUGS = {
    "nodes": "Node",
    "namespaces": "Namespace",
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet",
    "pods": "Pod",
}
SLUG_OF = {kind: slug for slug, kind in SLUGS.items()}


def sees_whole_cluster(user, cluster) -> bool:
    """Metrics and nodes of the whole cluster: cluster-wide series (no namespace) are shown only then."""
    return access.visible_namespaces(user, METRICS_VIEW, cluster=cluster) is None and access.nodes_visible(
        user, cluster
    )


def metric_namespaces(user, cluster) -> frozenset[str] | None:
    """Namespaces whose metrics the user may see (None: all of them)."""
    return access.visible_namespaces(user, METRICS_VIEW, cluster=cluster)


def may_view_cluster(user, cluster) -> bool:
    """The cluster's card: some metrics of it are the user's to see."""
    namespaces = metric_namespaces(user, cluster)
    return namespaces is None or bool(namespaces)


def namespace_of(kind: str, namespace: str, name: str) -> str | None:
    return access.place_of(kind, namespace, name)


def may_view(user, cluster, kind: str, namespace: str, name: str) -> bool:
    """The charts of one object the user already may see (its page was authorized)."""
    if kind not in PLACES:
        return False
    if kind == "Node":
        return sees_whole_cluster(user, cluster)
    return access.may(user, METRICS_VIEW, cluster=cluster, namespace=namespace_of(kind, namespace, name))


def may_view_app(user, cluster, namespace: str) -> bool:
    return access.may(user, METRICS_VIEW, cluster=cluster, namespace=namespace) and access.may(
        user, WORKLOADS_VIEW, cluster=cluster, namespace=namespace
    )


def may_query(user, cluster) -> bool:
    """Writes PromQL in this cluster and sees the queries behind charts: ``metrics.query`` somewhere in it."""
    held = access.scope(user, METRICS_QUERY)
    cluster_id = getattr(cluster, "pk", cluster)
    return held.everywhere or cluster_id in held.clusters or bool(held.namespaces.get(cluster_id))


def query_clusters(user):
    """Clusters where the user may write PromQL (the explorer's choice)."""
    held = access.scope(user, METRICS_QUERY)
    clusters = access.clusters(user).order_by("name")
    if held.everywhere:
        return clusters
    return clusters.filter(pk__in=set(held.clusters) | {pk for pk, names in held.namespaces.items() if names})


def card_url(cluster, kind: str, namespace: str, name: str) -> str:
    return reverse("observability:resource_metrics", args=[cluster.pk, SLUG_OF[kind], namespace or "_", name])
