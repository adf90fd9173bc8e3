"""A cluster's capacity (node allocatable), requests (pods that run or wait) and usage (metrics rows).

Everything here reads the inventory tables; the figures cover only what the user may see.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.core.cache import cache
from django.db import connection
from django.db.models import BigIntegerField, Count, QuerySet, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils.translation import gettext as _

from apps.accounts import access
from apps.clusters.models import Resource
from apps.clusters.values import byte_count, millicores

TERMINATED_POD_STATES = ("Succeeded", "Failed")
CAPACITY_CACHE_SECONDS = 30
REQUESTS_SQL = """
SELECT c->'resources'->'requests'->>'cpu', c->'resources'->'requests'->>'memory', count(*)
FROM clusters_resource r
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(r.object->'spec'->'containers') = 'array' THEN r.object->'spec'->'containers'
         ELSE '[]'::jsonb END) c
WHERE r.cluster_id = %s AND r.kind = 'Pod' AND NOT (r.status = ANY(%s)) {namespaces}
GROUP BY 1, 2
"""


@dataclass
class Capacity:
    nodes_visible: bool
    cpu_capacity: int | None = None
    memory_capacity: int | None = None
    cpu_requests: int = 0
    memory_requests: int = 0
    cpu_usage: int | None = None
    memory_usage: int | None = None
    usage_source: str = ""

    def percent(self, part: int | None, whole: int | None) -> int | None:
        if part is None or not whole:
            return None
        return round(100 * part / whole)

    @property
    def cpu_requests_percent(self):
        return self.percent(self.cpu_requests, self.cpu_capacity)

    @property
    def cpu_usage_percent(self):
        return self.percent(self.cpu_usage, self.cpu_capacity)

    @property
    def memory_requests_percent(self):
        return self.percent(self.memory_requests, self.memory_capacity)

    @property
    def memory_usage_percent(self):
        return self.percent(self.memory_usage, self.memory_capacity)

    def chart_data(self) -> dict:
        """Numbers for static/kubemate/charts.js: CPU in cores, memory in GiB."""
        gib = 2**30

        def cores(m):
            return None if m is None else round(m / 1000, 2)

        def gibs(b):
            return None if b is None else round(b / gib, 2)

        return {
            "labels": {"capacity": _("Capacity"), "requests": _("Requests"), "usage": _("Usage")},
            "cpu": {
                "title": _("CPU (cores)"),
                "capacity": cores(self.cpu_capacity),
                "requests": cores(self.cpu_requests),
                "usage": cores(self.cpu_usage),
                "requests_percent": self.cpu_requests_percent,
                "usage_percent": self.cpu_usage_percent,
            },
            "memory": {
                "title": _("Memory (GiB)"),
                "capacity": gibs(self.memory_capacity),
                "requests": gibs(self.memory_requests),
                "usage": gibs(self.memory_usage),
                "requests_percent": self.memory_requests_percent,
                "usage_percent": self.memory_usage_percent,
            },
        }


def pod_requests(user, cluster) -> tuple[int, int]:
    """CPU millicores and memory bytes requested by the visible pods that still run or wait.

    Summed in SQL over each container's requests, grouped by the request strings,
    so 15,000 pods come back as a handful of rows to parse.
    """
    namespaces = access.visible_namespaces(user, access.capability_for("Pod"), cluster=cluster)
    params: list = [cluster.pk, list(TERMINATED_POD_STATES)]
    clause = ""
    if namespaces is not None:
        if not namespaces:
            return 0, 0
        clause = "AND r.namespace = ANY(%s)"
        params.append(sorted(namespaces))
    cpu = memory = 0
    with connection.cursor() as cursor:
        cursor.execute(REQUESTS_SQL.format(namespaces=clause), params)
        for cpu_text, memory_text, n in cursor.fetchall():
            cpu += millicores(cpu_text) * n
            memory += byte_count(memory_text) * n
    return cpu, memory


def _metric_sums(rows: QuerySet[Resource]) -> tuple[int | None, int | None]:
    # Rows without the usage keys (a metrics object the summaries do not know yet) mean "no usage", not zero.
    totals = rows.filter(summary__has_key="cpu_millicores").aggregate(
        n=Count("id"),
        cpu=Sum(Cast(KeyTextTransform("cpu_millicores", "summary"), BigIntegerField())),
        memory=Sum(Cast(KeyTextTransform("memory_bytes", "summary"), BigIntegerField())),
    )
    if not totals["n"]:
        return None, None
    return totals["cpu"] or 0, totals["memory"] or 0


def capacity(user, cluster) -> Capacity:
    """Capacity (node allocatable), requests (visible running pods), usage (metrics rows when synced).

    Summing requests reads every pod's containers, the one costly query of the overview, so the
    result is cached briefly per cluster and per set of visible namespaces.
    """
    namespaces = access.visible_namespaces(user, access.capability_for("Pod"), cluster=cluster)
    scope = "all" if namespaces is None else hashlib.sha256(",".join(sorted(namespaces)).encode()).hexdigest()[:16]
    key = f"inventory:capacity:{cluster.pk}:{access.nodes_visible(user, cluster)}:{scope}"
    cached = cache.get(key)
    if cached is None:
        cached = _capacity(user, cluster)
        cache.set(key, cached, CAPACITY_CACHE_SECONDS)
    return cached


def _capacity(user, cluster) -> Capacity:
    shown = access.nodes_visible(user, cluster)
    result = Capacity(nodes_visible=shown)
    if shown:
        cpu = memory = 0
        for alloc in access.resources(user, cluster, "Node").values_list("object__status__allocatable", flat=True):
            alloc = alloc or {}
            cpu += millicores(alloc.get("cpu"))
            memory += byte_count(alloc.get("memory"))
        result.cpu_capacity, result.memory_capacity = cpu, memory
        result.cpu_usage, result.memory_usage = _metric_sums(access.resources(user, cluster, "NodeMetrics"))
        result.usage_source = "nodes"
    else:
        result.cpu_usage, result.memory_usage = _metric_sums(access.resources(user, cluster, "PodMetrics"))
        result.usage_source = "pods"
    result.cpu_requests, result.memory_requests = pod_requests(user, cluster)
    return result
