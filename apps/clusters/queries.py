"""Read helpers for the inventory pages: visibility, counts, capacity, freshness, attention.

Everything here reads the inventory tables (Resource, SyncState) only; no
function calls a cluster. Visibility follows ``accounts.access``: a row a user
may not see is absent from every list, count and sum computed here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.core.cache import cache
from django.db import connection
from django.db.models import BigIntegerField, Count, Q, QuerySet, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from apps.accounts import access
from apps.accounts.models import Binding
from apps.clusters.kinds import KINDS
from apps.clusters.models import Cluster, Resource, SyncState

BY_SLUG = {k.plural: k for k in KINDS}
SLUG_OF = {k.kind: k.plural for k in KINDS}
# Cluster-scoped kinds shown only to users holding nodes.view for the whole cluster.
CLUSTER_WIDE_KINDS = frozenset({"Node", "PersistentVolume", "StorageClass", "NodeMetrics"})
TERMINATED_POD_STATES = ("Succeeded", "Failed")
STALE_AFTER = timedelta(minutes=2)
PENDING_TOO_LONG = timedelta(minutes=5)
POD_PROBLEMS = (
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "RunContainerError",
    "Failed",
)

GOOD = frozenset({"Running", "Available", "Ready", "Active", "Bound", "Complete", "Accepted", "Scheduled", "Normal"})
BUSY = frozenset({"Pending", "Progressing", "Terminating", "Limited", "Suspended", "Released", "ContainerCreating"})
BAD = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "RunContainerError",
        "Failed",
        "Degraded",
        "NotReady",
        "NoEndpoints",
        "NotAccepted",
        "Warning",
        "Lost",
        "Unknown",
    }
)


def badge_class(status: str) -> str:
    """Tabler badge colours: green for healthy, yellow for in progress, red for a problem."""
    first = (status or "").split(",", 1)[0]
    if first in BAD:
        return "bg-red-lt"
    if "SchedulingDisabled" in (status or "") or first in BUSY:
        return "bg-yellow-lt"
    if first in GOOD:
        return "bg-green-lt"
    return "bg-secondary-lt"


# Who sees what ----------------------------------------------------------------------------------


def visible_clusters(user) -> QuerySet[Cluster]:
    """Clusters where the user holds any binding; platform-scoped bindings cover every cluster."""
    grants = access.grants_for(user)
    if any(g.scope == Binding.Scope.PLATFORM for g in grants):
        return Cluster.objects.all()
    return Cluster.objects.filter(pk__in={g.cluster_id for g in grants if g.cluster_id})


def cluster_for(user, cluster_id: int) -> Cluster:
    """The cluster, or 404 when it is missing or the user holds nothing in it."""
    cluster = visible_clusters(user).filter(pk=cluster_id).first()
    if cluster is None:
        raise Http404
    return cluster


def capability_for(kind: str) -> str:
    if kind == "Secret":
        return "secrets.view_metadata"
    if kind in CLUSTER_WIDE_KINDS:
        return "nodes.view"
    return "workloads.view"


def nodes_visible(user, cluster) -> bool:
    return access.visible_namespaces(user, "nodes.view", cluster=cluster) is None


def visibility_q(user, cluster, kind: str) -> Q | None:
    """The filter that keeps the rows of ``kind`` the user may see; None when they may see none."""
    if kind in CLUSTER_WIDE_KINDS:
        return Q() if nodes_visible(user, cluster) else None
    if kind == "Namespace":
        namespaces = access.visible_namespaces(user, "workloads.view", cluster=cluster)
        return Q() if namespaces is None else (Q(name__in=sorted(namespaces)) if namespaces else None)
    namespaces = access.visible_namespaces(user, capability_for(kind), cluster=cluster)
    if namespaces is None:
        return Q()
    return Q(namespace__in=sorted(namespaces)) if namespaces else None


def visible(user, cluster, kind: str) -> QuerySet[Resource]:
    """Rows of ``kind`` in ``cluster`` that ``user`` may see."""
    rows = Resource.objects.filter(cluster=cluster, kind=kind)
    q = visibility_q(user, cluster, kind)
    return rows.none() if q is None else rows.filter(q)


def kinds_q(user, cluster, kinds) -> Q | None:
    """One filter for several kinds in one cluster, each with its own visibility; None when nothing shows."""
    parts = [(kind, visibility_q(user, cluster, kind)) for kind in kinds]
    combined = None
    for kind, q in parts:
        if q is None:
            continue
        term = Q(cluster_id=cluster.pk, kind=kind) & q
        combined = term if combined is None else combined | term
    return combined


def visible_namespace_names(user, cluster) -> list[str]:
    """Namespace names for the namespace filter: the ones the user may see and that exist in the inventory."""
    return list(visible(user, cluster, "Namespace").order_by("name").values_list("name", flat=True))


# Time in words --------------------------------------------------------------------------------


def duration_words(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return _("%(n)d s") % {"n": seconds}
    minutes = seconds // 60
    if minutes < 60:
        return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}
    hours = minutes // 60
    if hours < 48:
        return ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}
    days = hours // 24
    return ngettext("%(n)d day", "%(n)d days", days) % {"n": days}


def short_age(created: datetime | None, now: datetime) -> str:
    """kubectl-style age: 45s, 12m, 5h, 3d."""
    if created is None:
        return ""
    seconds = max(int((now - created).total_seconds()), 0)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


# Sync freshness -------------------------------------------------------------------------------


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


# Multi-cluster home ---------------------------------------------------------------------------


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
        q = kinds_q(user, cluster, ("Node", "Pod"))
        warnings = visibility_q(user, cluster, "Event")
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


def cluster_cards(user, now: datetime | None = None) -> list[ClusterCard]:
    """One card per visible cluster, from three queries whatever the number of clusters."""
    now = now or timezone.now()
    clusters = list(visible_clusters(user).order_by("name"))
    counts = health_counts(user, clusters)
    states = sync_states([c.pk for c in clusters])
    cards = []
    for cluster in clusters:
        health = counts[cluster.pk]
        cards.append(
            ClusterCard(
                cluster,
                nodes_visible(user, cluster),
                nodes_total=sum(health["Node"].values()),
                nodes_ready=ready_nodes(health["Node"]),
                pods_total=sum(health["Pod"].values()),
                pods=status_list(health["Pod"]),
                warnings=sum(health["Event"].values()),
                freshness=freshness_of(states[cluster.pk], now),
            )
        )
    return cards


def status_list(counts: dict[str, int]) -> list[tuple[str, int, str]]:
    """(status, count, badge class), problems first, then by count."""
    return sorted(
        ((status or "—", n, badge_class(status)) for status, n in counts.items()),
        key=lambda item: (item[2] != "bg-red-lt", item[2] != "bg-yellow-lt", -item[1], item[0]),
    )


# Quantities -----------------------------------------------------------------------------------

_SUFFIX = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]{0,2})$")


def parse_quantity(value) -> Decimal:
    """A Kubernetes quantity ("500m", "2", "128Mi", "1e9") as a number; 0 when absent or malformed."""
    if value in (None, ""):
        return Decimal(0)
    match = _QUANTITY.match(str(value).strip())
    if not match:
        return Decimal(0)
    number, suffix = match.groups()
    try:
        return Decimal(number) * Decimal(_SUFFIX.get(suffix, 1) if suffix else 1)
    except InvalidOperation:
        return Decimal(0)


def millicores(value) -> int:
    return int(parse_quantity(value) * 1000)


def byte_count(value) -> int:
    return int(parse_quantity(value))


def cpu_words(millis: int | None) -> str:
    if millis is None:
        return "—"
    cores = f"{millis / 1000:.2f}".rstrip("0").rstrip(".")
    return ngettext("%(n)s core", "%(n)s cores", 1 if cores == "1" else 2) % {"n": cores}


def bytes_words(value: int | None) -> str:
    if value is None:
        return "—"
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


# Capacity, requests and usage -----------------------------------------------------------------

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
    namespaces = access.visible_namespaces(user, "workloads.view", cluster=cluster)
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


CAPACITY_CACHE_SECONDS = 30


def capacity(user, cluster) -> Capacity:
    """Capacity (node allocatable), requests (visible running pods), usage (metrics rows when synced).

    Summing requests reads every pod's containers, the one costly query of the overview, so the
    result is cached briefly per cluster and per set of visible namespaces.
    """
    namespaces = access.visible_namespaces(user, "workloads.view", cluster=cluster)
    scope = "all" if namespaces is None else hashlib.sha256(",".join(sorted(namespaces)).encode()).hexdigest()[:16]
    key = f"inventory:capacity:{cluster.pk}:{nodes_visible(user, cluster)}:{scope}"
    cached = cache.get(key)
    if cached is None:
        cached = _capacity(user, cluster)
        cache.set(key, cached, CAPACITY_CACHE_SECONDS)
    return cached


def _capacity(user, cluster) -> Capacity:
    shown = nodes_visible(user, cluster)
    result = Capacity(nodes_visible=shown)
    if shown:
        cpu = memory = 0
        for alloc in visible(user, cluster, "Node").values_list("object__status__allocatable", flat=True):
            alloc = alloc or {}
            cpu += millicores(alloc.get("cpu"))
            memory += byte_count(alloc.get("memory"))
        result.cpu_capacity, result.memory_capacity = cpu, memory
        result.cpu_usage, result.memory_usage = _metric_sums(visible(user, cluster, "NodeMetrics"))
        result.usage_source = "nodes"
    else:
        result.cpu_usage, result.memory_usage = _metric_sums(visible(user, cluster, "PodMetrics"))
        result.usage_source = "pods"
    result.cpu_requests, result.memory_requests = pod_requests(user, cluster)
    return result


# Overview health ------------------------------------------------------------------------------


def warning_events(user, cluster, limit: int = 20) -> list[Resource]:
    """The newest warning events (by when they last happened)."""
    rows = visible(user, cluster, "Event").filter(status="Warning")
    newest = rows.annotate(last=KeyTextTransform("last", "summary")).order_by("-last", "-id")
    return list(newest.only("id", "kind", "namespace", "name", "status", "summary", "created")[:limit])


@dataclass
class Attention:
    resource: Resource
    reason: str
    severity: int


def _attention_reason(row: Resource, now: datetime) -> tuple[str, int]:
    status = row.status
    if row.kind == "Pod":
        reasons = {
            "CrashLoopBackOff": _("keeps crashing and being restarted"),
            "ImagePullBackOff": _("cannot pull its image"),
            "ErrImagePull": _("cannot pull its image"),
            "CreateContainerConfigError": _("its container settings refer to something missing (ConfigMap or Secret)"),
            "RunContainerError": _("its container cannot start"),
            "Failed": _("has failed"),
        }
        if status == "Pending":
            waited = duration_words((now - row.created).total_seconds()) if row.created else "?"
            return _("has been waiting to start for %(age)s") % {"age": waited}, 1
        return reasons.get(status, status), 0
    if row.kind == "Node":
        if status.startswith("NotReady"):
            return _("is not ready: its pods may be unreachable"), 0
        return _("is cordoned: no new pods are placed on it"), 2
    if row.kind in ("Deployment", "StatefulSet", "DaemonSet"):
        s = row.summary or {}
        return _("has %(ready)s of %(desired)s replicas ready") % {
            "ready": s.get("ready", 0),
            "desired": s.get("desired", 0),
        }, 1
    if row.kind == "PersistentVolumeClaim":
        return _("is waiting for a volume"), 1
    if row.kind == "Job":
        return _("has failed"), 1
    return status, 2


def attention(user, cluster, now: datetime | None = None, limit: int = 100) -> tuple[list[Attention], int]:
    """Objects that need a person: failing pods, degraded workloads, unhealthy nodes, pending claims, failed jobs."""
    now = now or timezone.now()
    wanted = [
        ("Pod", Q(status__in=POD_PROBLEMS) | Q(status="Pending", created__lt=now - PENDING_TOO_LONG)),
        ("Deployment", Q(status="Degraded")),
        ("StatefulSet", Q(status="Degraded")),
        ("DaemonSet", Q(status="Degraded")),
        ("Node", Q(status__startswith="NotReady") | Q(status__endswith="SchedulingDisabled")),
        ("PersistentVolumeClaim", Q(status="Pending")),
        ("Job", Q(status="Failed")),
    ]
    combined = None
    for kind, condition in wanted:
        q = visibility_q(user, cluster, kind)
        if q is None:
            continue
        term = Q(kind=kind) & condition & q
        combined = term if combined is None else combined | term
    if combined is None:
        return [], 0
    rows = Resource.objects.filter(cluster=cluster).filter(combined)
    found = list(
        rows.only("id", "kind", "namespace", "name", "status", "summary", "created").order_by("kind", "name")[:limit]
    )
    total = len(found) if len(found) < limit else rows.count()
    items = []
    for row in found:
        reason, severity = _attention_reason(row, now)
        items.append(Attention(row, reason, severity))
    items.sort(key=lambda a: (a.severity, a.resource.kind, a.resource.namespace, a.resource.name))
    return items, total


# Lists ------------------------------------------------------------------------------------------

PAGE_SIZE = 50
SORTS = {
    "name": ("name", "namespace"),
    "-name": ("-name", "-namespace"),
    "namespace": ("namespace", "name"),
    "-namespace": ("-namespace", "-name"),
    "status": ("status", "namespace", "name"),
    "-status": ("-status", "namespace", "name"),
    # "age" lists the youngest first, like reading a log.
    "age": ("-created", "namespace", "name"),
    "-age": ("created", "namespace", "name"),
}
_LABEL_KEY = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


class SelectorError(ValueError):
    """A label selector the user typed cannot be read; the message says why."""


def selector_q(text: str) -> Q:
    """Parse ``app=web,tier!=db,canary,!legacy`` into a filter on the labels column."""
    q = Q()
    for raw in text.split(","):
        term = raw.strip()
        if not term:
            continue
        negate = False
        if "!=" in term:
            key, value = (part.strip() for part in term.split("!=", 1))
            negate = True
        elif "=" in term:
            key, value = (part.strip() for part in term.replace("==", "=").split("=", 1))
        elif term.startswith("!"):
            key, value, negate = term[1:].strip(), None, True
        else:
            key, value = term, None
        if not _LABEL_KEY.match(key) or (value is not None and not _LABEL_VALUE.match(value)):
            raise SelectorError(
                _("“%(term)s” is not a label selector. Write key=value, key!=value, key or !key, separated by commas.")
                % {"term": term}
            )
        match = Q(labels__contains={key: value}) if value is not None else Q(labels__has_key=key)
        q &= ~match if negate else match
    return q


@dataclass
class Listing:
    rows: list
    total: int
    page: int
    pages: int
    error: str = ""

    @property
    def first(self) -> int:
        return (self.page - 1) * PAGE_SIZE + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.page * PAGE_SIZE, self.total)


def project_choices(user, cluster):
    from apps.accounts.models import Project

    projects = Project.objects.filter(cluster=cluster).order_by("name")
    namespaces = access.visible_namespaces(user, "workloads.view", cluster=cluster)
    if namespaces is not None:
        projects = projects.filter(namespaces__overlap=sorted(namespaces))
    return list(projects.only("id", "name", "namespaces"))


def default_sort(kind: str) -> str:
    if kind == "Event":
        return "age"
    return "name" if kind in CLUSTER_WIDE_KINDS or kind == "Namespace" else "namespace"


# Extra columns read straight from the stored object for kinds whose summary is thin.
OBJECT_COLUMNS = {
    "PersistentVolume": {
        "capacity": "object__spec__capacity__storage",
        "claim_namespace": "object__spec__claimRef__namespace",
        "claim": "object__spec__claimRef__name",
        "storage_class": "object__spec__storageClassName",
    },
}


def resource_listing(user, cluster, kind: str, params) -> Listing:
    """One page of visible rows of ``kind`` after search, label, status, namespace and project filters."""
    from django.db.models.fields.json import KT

    from apps.accounts.models import Project

    rows = visible(user, cluster, kind)
    search = (params.get("q") or "").strip()
    if search:
        rows = rows.filter(name__icontains=search)
    if params.get("status"):
        rows = rows.filter(status=params["status"])
    if params.get("namespace") and kind != "Namespace":
        rows = rows.filter(namespace=params["namespace"])
    project_id = params.get("project") or ""
    if project_id.isdigit():
        project = Project.objects.filter(cluster=cluster, pk=int(project_id)).values_list("namespaces", flat=True)
        namespaces = list(project.first() or [])
        rows = rows.filter(name__in=namespaces) if kind == "Namespace" else rows.filter(namespace__in=namespaces)
    error = ""
    if params.get("labels"):
        try:
            rows = rows.filter(selector_q(params["labels"]))
        except SelectorError as exc:
            error, rows = str(exc), rows.none()
    total = rows.count()
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = params.get("page") or "1"
    page = min(max(int(page), 1), pages) if page.isdigit() else 1
    order = SORTS.get(params.get("sort") or default_sort(kind), SORTS[default_sort(kind)])
    fields = ("id", "kind", "namespace", "name", "status", "summary", "labels", "created", "owner_kind", "owner_name")
    extra = {key: KT(path) for key, path in OBJECT_COLUMNS.get(kind, {}).items()}
    start = (page - 1) * PAGE_SIZE
    found = list(rows.only(*fields).annotate(**extra).order_by(*order)[start : start + PAGE_SIZE]) if total else []
    return Listing(found, total, page, pages, error)


def status_choices(user, cluster, kind: str) -> list[str]:
    rows = visible(user, cluster, kind).exclude(status="").values_list("status", flat=True).distinct()
    return sorted(rows.order_by())


# Detail pages -----------------------------------------------------------------------------------


def find_visible(user, cluster, kind: str, namespace: str, name: str) -> Resource:
    """One object the user may see, or 404 (missing and forbidden look the same)."""
    row = visible(user, cluster, kind).filter(namespace=namespace, name=name).first()
    if row is None:
        raise Http404
    return row


def decorate(rows) -> list[Resource]:
    """Give rows what templates need to link them: kind slug, namespace path part, badge."""
    rows = list(rows)
    for row in rows:
        row.slug = SLUG_OF.get(row.kind, "")
        row.ns_arg = row.namespace or "_"
        row.badge = badge_class(row.status)
    return rows


@dataclass
class Section:
    key: str
    title: str
    rows: list
    empty: str = ""


LIGHT = ("id", "kind", "namespace", "name", "status", "summary", "labels", "created", "uid", "owner_uid")


def _selector_matches(selector: dict | None, labels: dict | None) -> bool:
    return bool(selector) and all((labels or {}).get(k) == v for k, v in selector.items())


def _services_for_labels(user, cluster, namespace: str, pod_labels: dict) -> list[Resource]:
    rows = visible(user, cluster, "Service").filter(namespace=namespace).order_by("name")
    selectors = dict(rows.values_list("id", "object__spec__selector"))
    wanted = [pk for pk, selector in selectors.items() if _selector_matches(selector, pod_labels)]
    return list(rows.filter(pk__in=wanted).only(*LIGHT)) if wanted else []


def _routes_for_services(user, cluster, namespace: str, service_names: set[str]) -> list[Resource]:
    if not service_names:
        return []
    rows = visible(user, cluster, "HTTPRoute")
    wanted = []
    for pk, route_ns, rules in rows.values_list("id", "namespace", "object__spec__rules"):
        for rule in rules or []:
            for ref in rule.get("backendRefs") or []:
                same_kind = ref.get("kind", "Service") == "Service" and not ref.get("group")
                if same_kind and ref.get("namespace", route_ns) == namespace and ref.get("name") in service_names:
                    wanted.append(pk)
    return list(rows.filter(pk__in=wanted).only(*LIGHT).order_by("namespace", "name")) if wanted else []


def _hpas_for(user, cluster, resource: Resource) -> list[Resource]:
    rows = visible(user, cluster, "HorizontalPodAutoscaler").filter(
        namespace=resource.namespace,
        object__spec__scaleTargetRef__name=resource.name,
        object__spec__scaleTargetRef__kind=resource.kind,
    )
    return list(rows.only(*LIGHT))


def events_for(user, cluster, resource: Resource, limit: int = 50) -> list[Resource]:
    rows = visible(user, cluster, "Event").filter(summary__object_uid=str(resource.uid))
    return list(rows.annotate(last=KeyTextTransform("last", "summary")).order_by("-last", "-id").only(*LIGHT)[:limit])


def related_sections(user, cluster, resource: Resource) -> list[Section]:
    """The objects around ``resource`` that an operator looks at next, each list filtered by visibility."""
    kind, ns = resource.kind, resource.namespace
    obj = resource.object or {}
    spec = obj.get("spec") or {}
    sections: list[Section] = []

    def add(key, title, rows, empty=""):
        sections.append(Section(key, title, decorate(rows), empty))

    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"):
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if kind == "Deployment":
            replicasets = list(
                visible(user, cluster, "ReplicaSet").filter(owner_uid=resource.uid).only(*LIGHT).order_by("-created")
            )
            add("replicasets", _("Replica sets"), replicasets, _("No replica set belongs to this deployment."))
            owners = [rs.uid for rs in replicasets]
        elif kind == "CronJob":
            jobs = visible(user, cluster, "Job").filter(owner_uid=resource.uid).only(*LIGHT).order_by("-created")
            none_kept = _("This cron job has not started a job that is still kept.")
            add("jobs", pgettext("Kubernetes kind", "Jobs"), jobs[:50], none_kept)
            owners = []
        else:
            owners = [resource.uid]
        if kind != "CronJob":
            pods = visible(user, cluster, "Pod").filter(owner_uid__in=owners).only(*LIGHT).order_by("name")
            add("pods", _("Pods"), pods[:200], _("No pod runs for it right now."))
        if kind in ("Deployment", "StatefulSet", "DaemonSet") and template_labels:
            services = _services_for_labels(user, cluster, ns, template_labels)
            add("services", _("Services"), services, _("No service sends traffic to these pods."))
            routes = _routes_for_services(user, cluster, ns, {s.name for s in services})
            add("routes", _("HTTP routes"), routes, _("No HTTP route points at these services."))
        if kind in ("Deployment", "StatefulSet"):
            add("hpas", _("Autoscaling"), _hpas_for(user, cluster, resource), _("No autoscaler scales it."))
    elif kind == "Service":
        slices = visible(user, cluster, "EndpointSlice").filter(
            namespace=ns, labels__contains={"kubernetes.io/service-name": resource.name}
        )
        add("endpointslices", _("Endpoint slices"), slices.only(*LIGHT).order_by("name"))
        selector = spec.get("selector") or {}
        pods = (
            visible(user, cluster, "Pod").filter(namespace=ns, labels__contains=selector).only(*LIGHT).order_by("name")
            if selector
            else []
        )
        add("pods", _("Pods"), list(pods[:200]), _("No pod matches this service's selector."))
        routes = _routes_for_services(user, cluster, ns, {resource.name})
        add("routes", _("HTTP routes"), routes, _("No HTTP route points at this service."))
    elif kind == "Node":
        pods = (
            visible(user, cluster, "Pod").filter(summary__node=resource.name).only(*LIGHT).order_by("namespace", "name")
        )
        add("pods", _("Pods on this node"), pods[:300], _("No pod you may see runs on this node."))
    elif kind == "PersistentVolumeClaim":
        pods = visible(user, cluster, "Pod").filter(
            namespace=ns, object__spec__volumes__contains=[{"persistentVolumeClaim": {"claimName": resource.name}}]
        )
        add("pods", _("Pods using this claim"), pods.only(*LIGHT).order_by("name"), _("No pod uses this claim."))
    elif kind == "HTTPRoute":
        names = {
            ref.get("name")
            for rule in spec.get("rules") or []
            for ref in rule.get("backendRefs") or []
            if ref.get("kind", "Service") == "Service" and ref.get("namespace", ns) == ns
        }
        services = visible(user, cluster, "Service").filter(namespace=ns, name__in=names).only(*LIGHT)
        add("services", _("Backend services"), services.order_by("name"), _("This route names no service."))
    elif kind == "HorizontalPodAutoscaler":
        target = spec.get("scaleTargetRef") or {}
        rows = visible(user, cluster, target.get("kind") or "Deployment")
        add("target", _("Scales"), rows.filter(namespace=ns, name=target.get("name", "")).only(*LIGHT))
    if kind != "Event":
        add("events", _("Events"), events_for(user, cluster, resource), _("No event was recorded for it."))
    return sections


def namespace_contents(user, cluster, namespace: str) -> list[tuple[str, int]]:
    """(kind, count) of the objects the user may see in one namespace, in one query."""
    kinds = [k.kind for k in KINDS if k.namespaced and k.kind != "Event"]
    combined = kinds_q(user, cluster, kinds)
    if combined is None:
        return []
    rows = Resource.objects.filter(combined, namespace=namespace).values("kind").annotate(n=Count("id")).order_by()
    counts = {row["kind"]: row["n"] for row in rows}
    return [(kind, counts[kind]) for kind in kinds if kind in counts]


def owner_of(user, cluster, resource: Resource) -> Resource | None:
    if not resource.owner_uid or not resource.owner_kind:
        return None
    row = visible(user, cluster, resource.owner_kind).filter(uid=resource.owner_uid).only(*LIGHT).first()
    return decorate([row])[0] if row else None


def metrics_for(user, cluster, resource: Resource) -> dict | None:
    """The latest usage row for a node or pod, when the metrics sync stored one."""
    kind = {"Node": "NodeMetrics", "Pod": "PodMetrics"}.get(resource.kind)
    if not kind:
        return None
    row = visible(user, cluster, kind).filter(namespace=resource.namespace, name=resource.name).first()
    if row is None:
        return None
    s = row.summary or {}
    return {
        "cpu": cpu_words(s.get("cpu_millicores")),
        "memory": bytes_words(s.get("memory_bytes")),
        "at": row.synced_at,
    }


def containers_of(resource: Resource) -> list[dict]:
    """A pod's containers with image, state in words, restarts and resources."""
    obj = resource.object or {}
    statuses = {c.get("name"): c for c in (obj.get("status") or {}).get("containerStatuses") or []}
    rows = []
    for container in (obj.get("spec") or {}).get("containers") or []:
        status = statuses.get(container.get("name"), {})
        state = status.get("state") or {}
        last = (status.get("lastState") or {}).get("terminated") or {}
        if "running" in state:
            word, badge, detail = _("Running"), "bg-green-lt", state["running"].get("startedAt", "")
        elif "waiting" in state:
            reason = state["waiting"].get("reason", "")
            word, badge, detail = (
                reason or _("Waiting"),
                badge_class(reason or "Pending"),
                state["waiting"].get("message", ""),
            )
        elif "terminated" in state:
            t = state["terminated"]
            word = t.get("reason") or _("Terminated")
            badge = "bg-secondary-lt" if t.get("exitCode") == 0 else "bg-red-lt"
            detail = _("exit code %(code)s") % {"code": t.get("exitCode")}
        else:
            word, badge, detail = _("Not started"), "bg-secondary-lt", ""
        resources = container.get("resources") or {}
        rows.append(
            {
                "name": container.get("name", ""),
                "image": container.get("image", ""),
                "state": word,
                "badge": badge,
                "detail": detail,
                "ready": bool(status.get("ready")),
                "restarts": status.get("restartCount", 0),
                "last_reason": last.get("reason", ""),
                "last_exit": last.get("exitCode"),
                "requests": ", ".join(f"{k} {v}" for k, v in (resources.get("requests") or {}).items()),
                "limits": ", ".join(f"{k} {v}" for k, v in (resources.get("limits") or {}).items()),
            }
        )
    return rows
