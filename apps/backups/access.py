"""Who may see and act on backups, in one place.

- Storage targets, etcd access and Kubemate's own database plans are the platform's: ``backups.admin``.
- etcd plans and snapshots are the whole cluster's: the capability held on the cluster (not in a project).
- Velero plans, backups and restores name namespaces: the capability held in every namespace they name (none named:
  the whole cluster). A project's people see and act on the Velero objects of their own namespaces only.
"""

from __future__ import annotations

from collections.abc import Iterable

from apps.accounts import access
from apps.accounts.capabilities import BACKUPS_ADMIN, BACKUPS_VIEW
from apps.backups.models import Kind, Plan
from apps.clusters.models import Cluster


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
