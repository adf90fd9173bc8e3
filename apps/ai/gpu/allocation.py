"""GPU capacity and allocation from the inventory tables: GPU nodes, what the pods bound to them hold, by node,
namespace and pod.

A GPU resource is ``nvidia.com/gpu`` or a MIG slice ``nvidia.com/mig-<profile>`` (``nvidia.com/mig-1g.5gb``). A
pod holds what its containers ask for: extended resources cannot be overcommitted, so a request equals the limit
and a limit alone is the request. As the scheduler counts it, a pod holds the larger of its containers' sum and
its largest init container. Pods that ended (Succeeded, Failed) hold nothing; pods without a node wait for GPUs.

Everything is summed in SQL over the pods' stored JSON (``Resource.object``), one query per figure, so a cluster
of 15,000 pods comes back as a few rows; Python only reads the rows of pods that hold GPUs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection

from apps.accounts import access
from apps.accounts.capabilities import AI_VIEW
from apps.clusters.inventory.capacity import TERMINATED_POD_STATES
from apps.clusters.values import parse_quantity

GPU = "nvidia.com/gpu"
MIG_PREFIX = "nvidia.com/mig-"
PRODUCT_LABEL = "nvidia.com/gpu.product"
PODS_SHOWN = 500  # pods listed on a page; the rest are counted

# One row per pod and GPU resource it holds (values in the query are parameters; the rest is this text). A GPU
# resource is nvidia.com/gpu or nvidia.com/mig-*, its amount an integer (extended resources are whole numbers;
# anything else counts as none). The jsonpath filter drops the pods that name no nvidia.com/ resource (nearly all
# of them) before their containers are taken apart; its selectivity estimate also keeps the planner from
# compiling the query (JIT), which alone took half a second at 15,000 pods.
GPU_PODS_SQL = """
SELECT r.id, r.namespace, r.name, COALESCE(r.summary->>'node', '') AS node, r.status, r.owner_kind, r.owner_name,
       r.created, held.resource, held.amount
FROM clusters_resource r
CROSS JOIN LATERAL (
    SELECT x.resource,
           GREATEST(COALESCE(SUM(x.amount) FILTER (WHERE NOT x.init), 0),
                    COALESCE(MAX(x.amount) FILTER (WHERE x.init), 0)) AS amount
    FROM (
        SELECT c.init, k.key AS resource,
               CASE WHEN COALESCE(c.requests->>k.key, c.limits->>k.key) ~ '^[0-9]{1,9}$'
                    THEN COALESCE(c.requests->>k.key, c.limits->>k.key)::bigint ELSE 0 END AS amount
        FROM (
            SELECT e.init,
                   CASE WHEN jsonb_typeof(e.body->'resources'->'limits') = 'object'
                        THEN e.body->'resources'->'limits' ELSE '{}'::jsonb END AS limits,
                   CASE WHEN jsonb_typeof(e.body->'resources'->'requests') = 'object'
                        THEN e.body->'resources'->'requests' ELSE '{}'::jsonb END AS requests
            FROM (
                SELECT FALSE AS init, value AS body FROM jsonb_array_elements(
                    CASE WHEN jsonb_typeof(r.object->'spec'->'containers') = 'array'
                         THEN r.object->'spec'->'containers' ELSE '[]'::jsonb END)
                UNION ALL
                SELECT TRUE, value FROM jsonb_array_elements(
                    CASE WHEN jsonb_typeof(r.object->'spec'->'initContainers') = 'array'
                         THEN r.object->'spec'->'initContainers' ELSE '[]'::jsonb END)
            ) e
        ) c
        CROSS JOIN LATERAL jsonb_object_keys(c.limits || c.requests) k(key)
        WHERE k.key = 'nvidia.com/gpu' OR k.key LIKE 'nvidia.com/mig-%%'
    ) x
    GROUP BY x.resource
) held
WHERE r.cluster_id = %s AND r.kind = 'Pod' AND NOT (r.status = ANY(%s))
  AND r.object @? '$.spec.*[*].resources.*.keyvalue() ? (@.key starts with "nvidia.com/")'
  AND held.amount > 0 {namespaces}
"""

# Sums by node and by namespace in one pass: allocated (pods bound to a node), waiting (not placed yet), and the
# pods counted once per place whatever they hold (the sets without the resource).
SUMS_SQL = (
    "WITH gpu AS (" + GPU_PODS_SQL + ")"
    """
SELECT GROUPING(node) = 0 AS by_node, CASE WHEN GROUPING(node) = 0 THEN node ELSE namespace END AS place,
       CASE WHEN GROUPING(resource) = 0 THEN resource ELSE '' END,
       COALESCE(SUM(amount) FILTER (WHERE node <> ''), 0), COALESCE(SUM(amount) FILTER (WHERE node = ''), 0),
       COUNT(DISTINCT id)
FROM gpu
GROUP BY GROUPING SETS ((node, resource), (namespace, resource), (node), (namespace))
"""
)

PODS_SQL = (
    "WITH gpu AS (" + GPU_PODS_SQL + ")"
    """
SELECT namespace, name, node, status, owner_kind, owner_name, created, jsonb_object_agg(resource, amount),
       COUNT(*) OVER ()
FROM gpu
GROUP BY id, namespace, name, node, status, owner_kind, owner_name, created
ORDER BY namespace, name
LIMIT %s
"""
)

NODES_SQL = """
SELECT r.name, r.status, COALESCE(r.labels->>'nvidia.com/gpu.product', ''),
       CASE WHEN jsonb_typeof(r.object->'spec'->'taints') = 'array' THEN r.object->'spec'->'taints'
            ELSE '[]'::jsonb END,
       CASE WHEN jsonb_typeof(r.object->'status'->'capacity') = 'object' THEN r.object->'status'->'capacity'
            ELSE '{}'::jsonb END,
       CASE WHEN jsonb_typeof(r.object->'status'->'allocatable') = 'object' THEN r.object->'status'->'allocatable'
            ELSE '{}'::jsonb END
FROM clusters_resource r
WHERE r.cluster_id = %s AND r.kind = 'Node' AND jsonb_typeof(r.object->'status'->'capacity') = 'object'
  AND EXISTS (
      SELECT 1 FROM jsonb_object_keys(r.object->'status'->'capacity') k(key)
      WHERE k.key = 'nvidia.com/gpu' OR k.key LIKE 'nvidia.com/mig-%%')
ORDER BY r.name
"""


def _json(value):
    """jsonb from a raw cursor: Django's connection hands it back as text."""
    return json.loads(value) if isinstance(value, str) else value


def is_gpu_resource(name: str) -> bool:
    return name == GPU or name.startswith(MIG_PREFIX)


def whole(value) -> int:
    """A GPU quantity ("4") as a whole number; 0 when absent or malformed."""
    return int(parse_quantity(value))


def short(resource: str) -> str:
    """``gpu`` or the MIG profile (``mig-1g.5gb``): what a column heading shows."""
    return resource.removeprefix("nvidia.com/")


def resource_order(resource: str) -> tuple:
    return (resource != GPU, resource)


@dataclass
class Amounts:
    """GPU resources by name: capacity, allocatable, allocated and waiting (requested by pods without a node)."""

    capacity: dict[str, int] = field(default_factory=dict)
    allocatable: dict[str, int] = field(default_factory=dict)
    allocated: dict[str, int] = field(default_factory=dict)
    waiting: dict[str, int] = field(default_factory=dict)

    @property
    def resources(self) -> list[str]:
        names = set(self.capacity) | set(self.allocatable) | set(self.allocated) | set(self.waiting)
        return sorted(names, key=resource_order)

    def rows(self) -> list[dict]:
        """One row per resource for templates: name, short name, figures, free and percent allocated."""
        found = []
        for name in self.resources:
            allocatable = self.allocatable.get(name)
            allocated = self.allocated.get(name, 0)
            free = None if allocatable is None else max(allocatable - allocated, 0)
            percent = round(100 * allocated / allocatable) if allocatable else None
            found.append(
                {
                    "resource": name,
                    "short": short(name),
                    "capacity": self.capacity.get(name),
                    "allocatable": allocatable,
                    "allocated": allocated,
                    "waiting": self.waiting.get(name, 0),
                    "free": free,
                    "percent": percent,
                }
            )
        return found

    def add(self, other: Amounts) -> None:
        for mine, theirs in (
            (self.capacity, other.capacity),
            (self.allocatable, other.allocatable),
            (self.allocated, other.allocated),
            (self.waiting, other.waiting),
        ):
            for name, value in theirs.items():
                mine[name] = mine.get(name, 0) + value

    @property
    def gpus(self) -> int | None:
        return self.allocatable.get(GPU)

    @property
    def gpus_allocated(self) -> int:
        return self.allocated.get(GPU, 0)

    @property
    def slices(self) -> int:
        return sum(v for k, v in self.allocatable.items() if k.startswith(MIG_PREFIX))

    @property
    def slices_allocated(self) -> int:
        return sum(v for k, v in self.allocated.items() if k.startswith(MIG_PREFIX))


@dataclass
class GpuNode:
    name: str
    status: str
    product: str
    taints: list[dict]
    amounts: Amounts
    pods: int = 0


@dataclass
class Place:
    """A namespace or a project and what its pods hold."""

    name: str
    amounts: Amounts
    pods: int = 0
    namespaces: list[str] = field(default_factory=list)
    project_id: int | None = None


@dataclass
class GpuPod:
    namespace: str
    name: str
    node: str
    status: str
    owner_kind: str
    owner_name: str
    created: datetime | None
    held: dict[str, int]

    @property
    def held_rows(self) -> list[tuple[str, int]]:
        return [(short(name), self.held[name]) for name in sorted(self.held, key=resource_order)]

    @property
    def count(self) -> int:
        return sum(self.held.values())


# Who sees what --------------------------------------------------------------------------------------------------


def pod_namespaces(user, cluster) -> frozenset[str] | None:
    """Namespaces whose GPU pods ``user`` sees: ``ai.view`` and the pods' own visibility (None: every one)."""
    ai = access.visible_namespaces(user, AI_VIEW, cluster=cluster)
    pods = access.visible_namespaces(user, access.capability_for("Pod"), cluster=cluster)
    if ai is None:
        return pods
    if pods is None:
        return ai
    return ai & pods


def sees_cluster(user, cluster) -> bool:
    """``ai.view`` somewhere in ``cluster``: its GPU page is theirs to open."""
    held = access.visible_namespaces(user, AI_VIEW, cluster=cluster)
    return held is None or bool(held)


def sees_whole(user, cluster) -> bool:
    """Every namespace's GPU pods and the nodes: node allocation (which sums every project's pods) is shown only
    then."""
    return access.nodes_visible(user, cluster) and pod_namespaces(user, cluster) is None


def sees_nodes(user, cluster) -> bool:
    return access.nodes_visible(user, cluster) and sees_cluster(user, cluster)


# The figures ----------------------------------------------------------------------------------------------------


def _run(sql: str, cluster, namespaces: frozenset[str] | None, *extra) -> list[tuple]:
    params: list = [cluster.pk, list(TERMINATED_POD_STATES)]
    clause = ""
    if namespaces is not None:
        if not namespaces:
            return []
        clause = "AND r.namespace = ANY(%s)"
        params.append(sorted(namespaces))
    with connection.cursor() as cursor:
        cursor.execute(sql.replace("{namespaces}", clause), [*params, *extra])
        return cursor.fetchall()


def gpu_nodes(cluster) -> list[GpuNode]:
    """The nodes of ``cluster`` with GPU resources in their capacity (callers check ``sees_nodes``)."""
    with connection.cursor() as cursor:
        cursor.execute(NODES_SQL, [cluster.pk])
        rows = cursor.fetchall()
    nodes = []
    for name, status, product, taints, capacity, allocatable in rows:
        taints, capacity, allocatable = _json(taints), _json(capacity), _json(allocatable)
        amounts = Amounts(
            capacity={k: whole(v) for k, v in capacity.items() if is_gpu_resource(k)},
            allocatable={k: whole(v) for k, v in allocatable.items() if is_gpu_resource(k)},
        )
        kept_taints = [
            {"key": str(t.get("key", "")), "value": str(t.get("value", "")), "effect": str(t.get("effect", ""))}
            for t in taints[:16]
            if isinstance(t, dict)
        ]
        nodes.append(GpuNode(name=name, status=status, product=product, taints=kept_taints, amounts=amounts))
    return nodes


@dataclass
class Sums:
    by_node: dict[str, Amounts]
    by_namespace: dict[str, Amounts]
    pods_by_node: dict[str, int]
    pods_by_namespace: dict[str, int]


def sums(cluster, namespaces: frozenset[str] | None) -> Sums:
    """Allocated and waiting GPU resources by node and by namespace, over the pods of ``namespaces`` (None: all),
    and how many pods hold them there."""
    result = Sums({}, {}, {}, {})
    for by_node, place, resource, allocated, waiting, pods in _run(SUMS_SQL, cluster, namespaces):
        if not resource:  # the (node) and (namespace) sets: pods counted once whatever they hold
            (result.pods_by_node if by_node else result.pods_by_namespace)[place] = int(pods)
            continue
        amounts = (result.by_node if by_node else result.by_namespace).setdefault(place, Amounts())
        if allocated:
            amounts.allocated[resource] = int(allocated)
        if waiting:
            amounts.waiting[resource] = int(waiting)
    return result


def gpu_pods(cluster, namespaces: frozenset[str] | None, limit: int = PODS_SHOWN) -> tuple[list[GpuPod], int]:
    """The pods holding or waiting for GPU resources (at most ``limit``, by namespace and name) and how many there
    are."""
    rows = _run(PODS_SQL, cluster, namespaces, limit)
    pods = [
        GpuPod(
            namespace=namespace,
            name=name,
            node=node,
            status=status,
            owner_kind=owner_kind,
            owner_name=owner_name,
            created=created,
            held={k: int(v) for k, v in _json(held).items()},
        )
        for namespace, name, node, status, owner_kind, owner_name, created, held, _total in rows
    ]
    return pods, (rows[0][-1] if rows else 0)
