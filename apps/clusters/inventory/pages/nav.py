"""What every page of one cluster shares: the menu of kinds the user may see."""

from __future__ import annotations

from apps.accounts import access
from apps.clusters.inventory.lists import SLUG_OF
from apps.clusters.inventory.pages.tables import KIND_LABELS, NAV_GROUPS


def kind_nav(user, cluster) -> list[tuple]:
    """Menu groups with the kinds this user may see in this cluster."""
    groups = []
    for label, kinds in NAV_GROUPS:
        items = [(KIND_LABELS[k], SLUG_OF[k]) for k in kinds if access.resources_q(user, cluster, k) is not None]
        if items:
            groups.append((label, items))
    return groups


def cluster_context(request, cluster, active: str = "") -> dict:
    return {"cluster": cluster, "kind_nav": kind_nav(request.user, cluster), "active_slug": active}
