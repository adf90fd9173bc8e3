"""Who may see and act on backups, in one place.

- Storage targets, etcd access and Kubemate's own database plans are the platform's: ``backups.admin``.
- etcd plans and snapshots are the whole cluster's: the capability held on the cluster (not in a project).
- Velero plans, backups and restores name namespaces: the capability held in every namespace they name (none named:
  the whole cluster). A project's people see and act on the Velero objects of their own namespaces only.

The pages fetch and authorize in one call (``cluster``, ``velero_cluster``, ``plan``; ``viewer`` and ``admin`` for
pages without an object): each raises Http404 for what a person may not see, as for what is missing.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.http import Http404

from apps.accounts import access
from apps.accounts.capabilities import BACKUPS_ADMIN, BACKUPS_VIEW
from apps.backups.models import Kind, Plan
from apps.clusters.models import Cluster, Resource

NAMESPACE_CHOICES = 500


def is_admin(user) -> bool:
    return access.may(user, BACKUPS_ADMIN)


def on_cluster(user, code: str, cluster: Cluster | int) -> bool:
    """``code`` held on the whole cluster (a cluster or platform binding)."""
    return access.may(user, code, cluster=cluster)


def on_namespaces(user, code: str, cluster: Cluster | int, namespaces: Iterable[str]) -> bool:
    """``code`` held in each of ``namespaces``; no namespace named means every one: the whole cluster."""
    names = [n for n in namespaces if n]
    if not names or "*" in names:
        return on_cluster(user, code, cluster)
    return all(access.may(user, code, cluster=cluster, namespace=n) for n in names)


def may_plan(user, code: str, plan: Plan) -> bool:
    if plan.kind == Kind.DATABASE:
        return is_admin(user)
    if plan.kind == Kind.ETCD:
        return on_cluster(user, code, plan.cluster_id)
    return on_namespaces(user, code, plan.cluster_id, plan.namespaces)


def visible_namespaces(user, cluster: Cluster) -> frozenset[str] | None:
    """Namespaces of ``cluster`` whose backups ``user`` sees; None: all of them."""
    return access.visible_namespaces(user, BACKUPS_VIEW, cluster=cluster)


def sees_cluster(user, cluster: Cluster) -> bool:
    seen = visible_namespaces(user, cluster)
    return seen is None or bool(seen)


# What the pages fetch and authorize in one step ----------------------------------------------------------------------


def holds(user, code: str) -> bool:
    """``code`` held somewhere: on the platform, a cluster or some namespace."""
    held = access.scope(user, code)
    return held.everywhere or bool(held.clusters) or any(held.namespaces.values())


def viewer(user) -> None:
    if not (holds(user, BACKUPS_VIEW) or is_admin(user)):
        raise Http404


def admin(user) -> None:
    if not is_admin(user):
        raise Http404


def clusters(user) -> list[Cluster]:
    return [c for c in access.clusters(user).order_by("name") if sees_cluster(user, c)]


def cluster(user, cluster_id: int) -> Cluster:
    found = access.clusters(user).filter(pk=cluster_id).first()
    if found is None or not sees_cluster(user, found):
        raise Http404
    return found


def velero_cluster(user, cluster_id: int) -> Cluster:
    found = cluster(user, cluster_id)
    if not found.velero_namespace:
        raise Http404
    return found


def plan(user, pk: int, code: str) -> Plan:
    """The plan, when ``user`` holds ``code`` for it (database plans: backups.admin); 404 otherwise."""
    found = Plan.objects.select_related("cluster", "target", "created_by").filter(pk=pk).first()
    if found is None or not may_plan(user, code, found):
        raise Http404
    return found


def visible_plans(user, plans) -> list[Plan]:
    return [p for p in plans if may_plan(user, BACKUPS_VIEW, p)]


def anywhere_in(user, code: str, cluster: Cluster) -> bool:
    """``code`` held on ``cluster`` or in one of its namespaces."""
    seen = access.visible_namespaces(user, code, cluster=cluster)
    return seen is None or bool(seen)


def namespace_choices(user, cluster: Cluster, code: str) -> tuple[list[str], bool]:
    """The namespaces offered for ``code``: a project's people their own; whole-cluster holders the cluster's
    namespaces (from the inventory) and may type others."""
    held = access.visible_namespaces(user, code, cluster=cluster)
    if held is not None:
        return sorted(held), False
    names = Resource.objects.filter(cluster=cluster, kind="Namespace").order_by("name").values_list("name", flat=True)
    return list(names[:NAMESPACE_CHOICES]), True
