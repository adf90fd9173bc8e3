"""One cluster's overview: health counts, what needs attention, warning events, capacity.

Read from the inventory tables only; no request here talks to a cluster. The page polls its
``live`` partial, which leaves out the capacity (the one costly query).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.utils import timezone
from django.views.decorators.http import require_GET

from apps.accounts import access
from apps.clusters.inventory import attention, capacity, health
from apps.clusters.inventory.pages.nav import cluster_context
from apps.clusters.inventory.pages.tables import event_times
from apps.clusters.inventory.related import decorate
from apps.clusters.inventory.words import bytes_words, cpu_words
from apps.core.htmx import render, wants_partial


@login_required
@require_GET
def cluster_overview(request, cluster_id: int):
    user = request.user
    cluster = access.cluster(user, cluster_id)
    now = timezone.now()
    counts = health.health_counts(user, [cluster])[cluster.pk]
    nodes, pods = counts["Node"], counts["Pod"]
    items, items_total = attention.attention(user, cluster, now)
    decorate(item.resource for item in items)
    events = decorate(attention.warning_events(user, cluster))
    for event in events:
        event_times(event, now)
    context = {
        **cluster_context(request, cluster),
        "freshness": health.freshness_of(health.sync_states([cluster.pk])[cluster.pk], now),
        "nodes_visible": access.nodes_visible(user, cluster),
        "nodes_total": sum(nodes.values()),
        "nodes_ready": health.ready_nodes(nodes),
        "pods": health.status_list(pods),
        "pods_total": sum(pods.values()),
        "events": events,
        "warning_total": sum(counts["Event"].values()),
        "attention": items,
        "attention_total": items_total,
        "now": now,
    }
    if not wants_partial(request):
        figures = capacity.capacity(user, cluster)
        context.update(
            capacity=figures,
            chart_data=figures.chart_data(),
            cpu=_capacity_words(figures, "cpu"),
            memory=_capacity_words(figures, "memory"),
        )
    return render(request, "clusters/inventory/overview.html", context, partial="live")


def _capacity_words(figures: capacity.Capacity, which: str) -> dict:
    words = cpu_words if which == "cpu" else bytes_words
    return {
        "capacity": words(getattr(figures, f"{which}_capacity")),
        "requests": words(getattr(figures, f"{which}_requests")),
        "usage": words(getattr(figures, f"{which}_usage")),
        "requests_percent": getattr(figures, f"{which}_requests_percent"),
        "usage_percent": getattr(figures, f"{which}_usage_percent"),
    }
