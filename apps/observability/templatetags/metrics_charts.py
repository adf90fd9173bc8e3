"""Where a page's metrics card loads from, when its reader may see those charts (``{% load metrics_charts %}``)."""

from __future__ import annotations

from django import template
from django.urls import reverse

from apps.observability.metrics import places

register = template.Library()


@register.simple_tag(takes_context=True)
def resource_metrics_url(context, cluster, resource) -> str:
    """The card of an inventory object's page (nodes, namespaces, workloads, pods); "" when it has none for
    this reader."""
    user = context["request"].user
    if resource.kind not in places.PLACES or not places.may_view(
        user, cluster, resource.kind, resource.namespace, resource.name
    ):
        return ""
    return places.card_url(cluster, resource.kind, resource.namespace, resource.name)


@register.simple_tag(takes_context=True)
def cluster_metrics_url(context, cluster) -> str:
    if not places.may_view_cluster(context["request"].user, cluster):
        return ""
    return reverse("observability:cluster_metrics", args=[cluster.pk])


@register.simple_tag(takes_context=True)
def app_metrics_url(context, cluster_id: int, namespace: str, name: str) -> str:
    """An app's request metrics (golden signals), for a release's page."""
    if not places.may_view_app(context["request"].user, cluster_id, namespace):
        return ""
    return reverse("observability:app_metrics", args=[cluster_id, namespace, name])
