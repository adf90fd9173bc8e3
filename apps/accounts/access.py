"""May user U do capability C here? One answer for buttons, views and the RBAC projection.

A user holds a capability at a place (a cluster, and optionally a namespace)
when one of their bindings, direct or through a group, grants a role with that
capability and covers the place:

- platform scope covers every cluster and namespace;
- cluster scope covers that cluster's namespaces;
- project scope covers the project's namespaces only, and never cluster-wide
  capabilities (nodes), since a RoleBinding cannot grant cluster-scoped objects.

Superusers are platform administrators. Inactive users hold nothing. The answer
matches what the projected RBAC lets the user's ServiceAccount do.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404

from apps.accounts import capabilities
from apps.accounts.models import Binding

ALL_CAPABILITIES = frozenset(capabilities.BY_CODE)


@dataclass(frozen=True)
class Grant:
    capabilities: frozenset[str]
    scope: str
    cluster_id: int | None
    namespaces: frozenset[str]


def grants_for(user) -> list[Grant]:
    """The user's grants, computed once per user object (one query)."""
    cached = getattr(user, "_kubemate_grants", None)
    if cached is not None:
        return cached
    grants: list[Grant] = []
    if user.is_active and user.is_authenticated:
        if user.is_superuser:
            grants.append(Grant(ALL_CAPABILITIES, Binding.Scope.PLATFORM, None, frozenset()))
        bindings = _binding_rows(user)
        for caps, scope, cluster_id, project_cluster_id, namespaces in bindings:
            grants.append(Grant(frozenset(caps), scope, cluster_id or project_cluster_id, frozenset(namespaces or ())))
    user._kubemate_grants = grants
    return grants


def _binding_rows(user):
    from django.db.models import Q

    return (
        Binding.objects.filter(Q(user=user) | Q(group__user=user))
        .distinct()
        .values_list("role__capabilities", "scope", "cluster_id", "project__cluster_id", "project__namespaces")
    )


def covers(grant: Grant, capability: capabilities.Capability, cluster_id: int | None, namespace: str | None) -> bool:
    if grant.scope == Binding.Scope.PLATFORM:
        return True
    if cluster_id is None or grant.cluster_id != cluster_id:
        return False
    if grant.scope == Binding.Scope.CLUSTER:
        return True
    # Project scope: namespaced capabilities inside the project's namespaces only.
    return not capability.cluster_wide and not capability.platform and namespace in grant.namespaces


def may(user, code: str, *, cluster=None, namespace: str | None = None) -> bool:
    """True when ``user`` holds capability ``code`` at ``cluster``/``namespace``.

    Platform capabilities (users, audit) are checked without a cluster; they are
    held through platform-scoped bindings only.
    """
    capability = capabilities.get(code)
    cluster_id = getattr(cluster, "pk", cluster)
    for grant in grants_for(user):
        if code not in grant.capabilities:
            continue
        if capability.platform:
            if grant.scope == Binding.Scope.PLATFORM:
                return True
            continue
        if covers(grant, capability, cluster_id, namespace):
            return True
    return False


def require(user, code: str, *, cluster=None, namespace: str | None = None) -> None:
    """Raise 404 (not 403: a forbidden object looks like a missing one) unless ``may`` says yes."""
    if not may(user, code, cluster=cluster, namespace=namespace):
        raise Http404


def visible_namespaces(user, code: str, *, cluster) -> frozenset[str] | None:
    """Namespaces of ``cluster`` where ``user`` holds ``code``: None means all of them.

    Lists and searches filter rows with this, so a user bound to one project
    never sees another project's objects, in any page, partial or download.
    """
    capability = capabilities.get(code)
    cluster_id = getattr(cluster, "pk", cluster)
    namespaces: set[str] = set()
    for grant in grants_for(user):
        if code not in grant.capabilities:
            continue
        if grant.scope == Binding.Scope.PLATFORM or (
            grant.scope == Binding.Scope.CLUSTER and grant.cluster_id == cluster_id
        ):
            return None
        if grant.scope == Binding.Scope.PROJECT and grant.cluster_id == cluster_id and not capability.cluster_wide:
            namespaces |= grant.namespaces
    return frozenset(namespaces)
