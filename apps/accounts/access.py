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

Three shapes, used everywhere:

- ``may``/``require`` answer for one place;
- ``q(user, code, cluster=..., namespace=...)`` filters any queryset in the database,
  so no list filters permissions in Python;
- fetch-and-authorize in one call, 404 for missing and forbidden alike:
  ``cluster(user, pk)``, ``resource(user, cluster, kind, namespace, name)``, and
  ``get_or_404(queryset, user, code, ...)`` for models of the apps above (releases.access).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce
from operator import or_

from django.db.models import Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from apps.accounts import capabilities
from apps.accounts.models import Binding
from apps.clusters.kinds import BY_KIND
from apps.clusters.models import Cluster, Resource

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


def platform_holders(code: str, *, with_email: bool = False) -> QuerySet:
    """The active users who hold platform capability ``code`` (superusers, and bindings at platform scope to a
    role with it, directly or through a group): the same answer as ``may`` for each, in one query."""
    from django.contrib.auth import get_user_model

    assert capabilities.get(code).platform, code
    bound = Binding.objects.filter(scope=Binding.Scope.PLATFORM, role__capabilities__contains=[code])
    people = (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(
            Q(is_superuser=True)
            | Q(pk__in=bound.filter(user__isnull=False).values("user"))
            | Q(groups__in=bound.filter(group__isnull=False).values("group"))
        )
    )
    if with_email:
        people = people.exclude(email="")
    return people.distinct().order_by("pk")


def require(user, code: str, *, cluster=None, namespace: str | None = None) -> None:
    """Raise 404 (not 403: a forbidden object looks like a missing one) unless ``may`` says yes."""
    if not may(user, code, cluster=cluster, namespace=namespace):
        raise Http404


def visible_namespaces(user, code: str, *, cluster) -> frozenset[str] | None:
    """Namespaces of ``cluster`` where ``user`` holds ``code``: None means all of them.

    Lists and searches filter rows with this, so a user bound to one project
    never sees another project's objects, in any page, partial or download.
    """
    held = scope(user, code)
    cluster_id = getattr(cluster, "pk", cluster)
    if held.everywhere or cluster_id in held.clusters:
        return None
    return held.namespaces.get(cluster_id, frozenset())


# Filters for lists ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Where a user holds one capability: everywhere, in whole clusters, or in some namespaces of some clusters."""

    everywhere: bool = False
    clusters: frozenset[int] = frozenset()
    namespaces: dict[int, frozenset[str]] = field(default_factory=dict)


def scope(user, code: str) -> Scope:
    """The places where ``user`` holds ``code``, from the same grants and rules as ``may``."""
    capability = capabilities.get(code)
    clusters: set[int] = set()
    namespaces: dict[int, set[str]] = {}
    for grant in grants_for(user):
        if code not in grant.capabilities:
            continue
        if grant.scope == Binding.Scope.PLATFORM:
            return Scope(everywhere=True)
        if capability.platform:
            continue
        if grant.scope == Binding.Scope.CLUSTER:
            clusters.add(grant.cluster_id)
        elif grant.scope == Binding.Scope.PROJECT and not capability.cluster_wide and grant.namespaces:
            namespaces.setdefault(grant.cluster_id, set()).update(grant.namespaces)
    return Scope(
        clusters=frozenset(clusters),
        namespaces={pk: frozenset(names) for pk, names in namespaces.items() if pk not in clusters},
    )


def q(user, code: str, *, cluster: str = "cluster", namespace: str = "namespace") -> Q:
    """A filter keeping the rows of any queryset whose place ``user`` holds ``code`` at.

    ``cluster`` and ``namespace`` are the field paths of the row's place, e.g.
    ``Release.objects.filter(q(user, "releases.view", cluster="project__cluster"))``.
    A ``namespace`` ending in ``__overlap`` names an array of namespaces (a project's):
    the row is kept when any of them is held.
    """
    held = scope(user, code)
    if held.everywhere:
        return Q()
    terms = []
    if held.clusters:
        terms.append(Q(**{f"{cluster}__in": sorted(held.clusters)}))
    lookup = namespace if namespace.endswith("__overlap") else f"{namespace}__in"
    for cluster_id, names in sorted(held.namespaces.items()):
        terms.append(Q(**{cluster: cluster_id, lookup: sorted(names)}))
    # pk__in=[] matches nothing without a query.
    return reduce(or_, terms) if terms else Q(pk__in=[])


def get_or_404(
    queryset: QuerySet, user, code: str, *, cluster: str = "cluster", namespace: str = "namespace", **lookup
):
    """The one row matching ``lookup`` that ``user`` holds ``code`` for; 404 when it is missing or forbidden."""
    return get_object_or_404(queryset.filter(q(user, code, cluster=cluster, namespace=namespace)), **lookup)


# Clusters and their inventory -------------------------------------------------------------------


def clusters(user) -> QuerySet[Cluster]:
    """Clusters where the user holds any binding; platform-scoped bindings cover every cluster."""
    grants = grants_for(user)
    if any(g.scope == Binding.Scope.PLATFORM for g in grants):
        return Cluster.objects.all()
    return Cluster.objects.filter(pk__in={g.cluster_id for g in grants if g.cluster_id})


def cluster(user, pk: int) -> Cluster:
    """The cluster, or 404 when it is missing or the user holds nothing in it."""
    found = clusters(user).filter(pk=pk).first()
    if found is None:
        raise Http404
    return found


def capability_for(kind: str) -> str:
    """The capability that lets a person see objects of ``kind`` (from the Kind registry)."""
    return BY_KIND[kind].capability


def place_of(kind: str, namespace: str, name: str) -> str | None:
    """The namespace an object belongs to for access: its own name for a Namespace, None when cluster-scoped."""
    if kind == "Namespace":
        return name
    return namespace or None


def nodes_visible(user, cluster) -> bool:
    return visible_namespaces(user, capabilities.NODES_VIEW, cluster=cluster) is None


def resources_q(user, cluster, kind: str) -> Q | None:
    """The filter that keeps the rows of ``kind`` in ``cluster`` the user may see; None when they may see none."""
    namespaces = visible_namespaces(user, capability_for(kind), cluster=cluster)
    if namespaces is None:
        return Q()
    if not namespaces:
        return None
    return Q(**{"name__in" if kind == "Namespace" else "namespace__in": sorted(namespaces)})


def resources(user, cluster, kind: str) -> QuerySet[Resource]:
    """Rows of ``kind`` in ``cluster`` that ``user`` may see."""
    rows = Resource.objects.filter(cluster=cluster, kind=kind)
    where = resources_q(user, cluster, kind)
    return rows.none() if where is None else rows.filter(where)


def kinds_q(user, cluster, kinds) -> Q | None:
    """One filter for several kinds in one cluster, each with its own visibility; None when nothing shows."""
    terms = []
    for kind in kinds:
        where = resources_q(user, cluster, kind)
        if where is not None:
            terms.append(Q(cluster_id=cluster.pk, kind=kind) & where)
    return reduce(or_, terms) if terms else None


def resource(user, cluster, kind: str, namespace: str, name: str) -> Resource:
    """One inventory object the user may see, or 404 (missing and forbidden look the same)."""
    row = resources(user, cluster, kind).filter(namespace=namespace, name=name).first()
    if row is None:
        raise Http404
    return row


def namespace_names(user, cluster) -> list[str]:
    """Names of the namespaces the user may see that exist in the inventory (the namespace filter's menu)."""
    return list(resources(user, cluster, "Namespace").order_by("name").values_list("name", flat=True))
