"""How each cluster is doing, from the inventory tables: node and pod counts, warnings, sync freshness.

The multi-cluster home and the dashboard read ``cluster_cards``; the overview reads the parts.
Every count covers only the rows the user may see (``accounts.access``); nothing here calls a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts import access
from apps.clusters.inventory.words import badge_class, duration_words
from apps.clusters.models import Cluster, Resource, SyncState

STALE_AFTER = timedelta(minutes=2)


@dataclass
class Freshness:
    heard_at: datetime | None
    stale: bool
    text: str


def freshness_of(states: list[dict], now: datetime) -> Freshness:
    """How fresh one cluster's inventory is, from its SyncState rows (dicts with state, heard_at, message)."""
    heard = [s["heard_at"] for s in states if s["heard_at"]]
    last = max(heard) if heard else None
    troubled = [s for s in states if s["state"] in (SyncState.State.DISCONNECTED, SyncState.State.FORBIDDEN)]
    reason = next((s["message"] for s in troubled if s["message"]), "")
    if last is None:
        text = _("Not synced yet: the inventory has not heard from this cluster.")
        if reason:
            text = _("Not synced yet: %(reason)s") % {"reason": reason}
        return Freshness(None, True, text)
    age = (now - last).total_seconds()
    if age > STALE_AFTER.total_seconds() or troubled:
        if not reason:
            reason = _("the API server is unreachable") if age > STALE_AFTER.total_seconds() else _("the watch stopped")
        return Freshness(
            last, True, _("Not synced for %(age)s: %(reason)s") % {"age": duration_words(age), "reason": reason}
        )
    return Freshness(last, False, _("Last synced %(age)s ago") % {"age": duration_words(age)})


def sync_states(cluster_ids) -> dict[int, list[dict]]:
    states: dict[int, list[dict]] = {pk: [] for pk in cluster_ids}
    for row in SyncState.objects.filter(cluster_id__in=list(cluster_ids)).values(
        "cluster_id", "state", "heard_at", "message"
    ):
        states[row["cluster_id"]].append(row)
    return states


@dataclass
class ClusterCard:
    cluster: Cluster
    nodes_visible: bool
    nodes_total: int = 0
    nodes_ready: int = 0
    pods_total: int = 0
    pods: list[tuple[str, int, str]] = field(default_factory=list)
    warnings: int = 0
    freshness: Freshness | None = None


def health_counts(user, clusters) -> dict[int, dict[str, dict[str, int]]]:
    """Per cluster: node and pod counts by status and the number of warning events, in one query."""
    counts: dict[int, dict[str, dict[str, int]]] = {c.pk: {"Node": {}, "Pod": {}, "Event": {}} for c in clusters}
    combined = None
    for cluster in clusters:
        q = access.kinds_q(user, cluster, ("Node", "Pod"))
        warnings = access.resources_q(user, cluster, "Event")
        if warnings is not None:
            q_event = Q(cluster_id=cluster.pk, kind="Event", status="Warning") & warnings
            q = q_event if q is None else q | q_event
        if q is not None:
            combined = q if combined is None else combined | q
    if combined is not None:
        rows = Resource.objects.filter(combined).values("cluster_id", "kind", "status").annotate(n=Count("id"))
        for row in rows.order_by():
            counts[row["cluster_id"]][row["kind"]][row["status"]] = row["n"]
    return counts


def ready_nodes(node_counts: dict[str, int]) -> int:
    # "Ready,SchedulingDisabled" is a ready node that takes no new pods.
    return sum(n for status, n in node_counts.items() if status.split(",")[0] == "Ready")


def status_list(counts: dict[str, int]) -> list[tuple[str, int, str]]:
    """(status, count, badge class), problems first, then by count."""
    return sorted(
        ((status or "—", n, badge_class(status)) for status, n in counts.items()),
        key=lambda item: (item[2] != "bg-red-lt", item[2] != "bg-yellow-lt", -item[1], item[0]),
    )


def cluster_cards(user, now: datetime | None = None) -> list[ClusterCard]:
    """One card per visible cluster, from three queries whatever the number of clusters."""
    now = now or timezone.now()
    clusters = list(access.clusters(user).order_by("name"))
    counts = health_counts(user, clusters)
    states = sync_states([c.pk for c in clusters])
    cards = []
    for cluster in clusters:
        health = counts[cluster.pk]
        cards.append(
            ClusterCard(
                cluster,
                access.nodes_visible(user, cluster),
                nodes_total=sum(health["Node"].values()),
                nodes_ready=ready_nodes(health["Node"]),
                pods_total=sum(health["Pod"].values()),
                pods=status_list(health["Pod"]),
                warnings=sum(health["Event"].values()),
                freshness=freshness_of(states[cluster.pk], now),
            )
        )
    return cards
