"""Inventory pages of one cluster: overview, a list per kind, a detail page per object.

They read the inventory tables only (see ``queries``); no request here talks to a cluster.
Every page answers 404 for a cluster the user holds nothing in and for objects outside their bindings.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_GET

from apps.clusters import queries
from apps.clusters.inventory.summaries import parse_time
from apps.clusters.views import partial_unless_restoring
from apps.core.htmx import render

KIND_LABELS = {
    "Deployment": _("Deployments"),
    "StatefulSet": _("Stateful sets"),
    "DaemonSet": _("Daemon sets"),
    "ReplicaSet": _("Replica sets"),
    "Job": pgettext_lazy("Kubernetes kind", "Jobs"),
    "CronJob": _("Cron jobs"),
    "Pod": _("Pods"),
    "HorizontalPodAutoscaler": _("Autoscalers"),
    "Service": _("Services"),
    "EndpointSlice": _("Endpoint slices"),
    "Ingress": _("Ingresses"),
    "HTTPRoute": _("HTTP routes"),
    "ConfigMap": _("Config maps"),
    "Secret": _("Secrets"),
    "PersistentVolumeClaim": _("Volume claims"),
    "PersistentVolume": _("Persistent volumes"),
    "StorageClass": _("Storage classes"),
    "Node": _("Nodes"),
    "Namespace": _("Namespaces"),
    "Event": _("Events"),
}
KIND_SINGULAR = {
    "Deployment": _("Deployment"),
    "StatefulSet": _("Stateful set"),
    "DaemonSet": _("Daemon set"),
    "ReplicaSet": _("Replica set"),
    "Job": pgettext_lazy("Kubernetes kind", "Job"),
    "CronJob": _("Cron job"),
    "Pod": _("Pod"),
    "HorizontalPodAutoscaler": _("Autoscaler"),
    "Service": _("Service"),
    "EndpointSlice": _("Endpoint slice"),
    "Ingress": _("Ingress"),
    "HTTPRoute": _("HTTP route"),
    "ConfigMap": _("Config map"),
    "Secret": _("Secret"),
    "PersistentVolumeClaim": _("Volume claim"),
    "PersistentVolume": _("Persistent volume"),
    "StorageClass": _("Storage class"),
    "Node": _("Node"),
    "Namespace": _("Namespace"),
    "Event": _("Event"),
}
NAV_GROUPS = (
    (_("Workloads"), ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod", "ReplicaSet")),
    (_("Network"), ("Service", "HTTPRoute", "Ingress", "EndpointSlice")),
    (_("Config and storage"), ("ConfigMap", "Secret", "PersistentVolumeClaim", "PersistentVolume", "StorageClass")),
    (_("Cluster"), ("Node", "Namespace", "Event", "HorizontalPodAutoscaler")),
)


def _s(key):
    return lambda row: row.summary.get(key, "")


def _join(key):
    return lambda row: ", ".join(str(v) for v in row.summary.get(key) or []) or "—"


def _of(a, b):
    return lambda row: f"{row.summary.get(a, 0)}/{row.summary.get(b, 0)}"


REPLICATED = [
    (_("Ready"), _of("ready", "desired")),
    (_("Up to date"), _s("updated")),
    (_("Available"), _s("available")),
]


# Columns after name, namespace and status; each reads the row's summary (or an annotated object path).
def hpa_metrics_text(metrics: list[dict]) -> str:
    """'cpu 72% / 70%' for each metric an autoscaler targets; '?' where the controller has no reading yet."""
    parts = []
    for m in metrics:
        current = m.get("current_percent")
        current = f"{current}%" if current is not None else (m.get("current_value") or "?")
        target = f"{m['target_percent']}%" if m.get("target_percent") is not None else (m.get("target_value") or "?")
        parts.append(f"{m.get('name', '')} {current} / {target}")
    return ", ".join(parts) or "—"


COLUMNS = {
    "Pod": [(_("Ready"), _s("ready")), (_("Restarts"), _s("restarts")), (_("Node"), _s("node")), (_("IP"), _s("ip"))],
    "Deployment": REPLICATED,
    "StatefulSet": REPLICATED,
    "ReplicaSet": REPLICATED,
    "DaemonSet": [(_("Desired"), _s("desired")), *REPLICATED],
    "Job": [(_("Succeeded"), _s("succeeded")), (_("Failed"), _s("failed")), (_("Active"), _s("active"))],
    "CronJob": [(_("Schedule"), _s("schedule")), (_("Last run"), lambda r: _time(r.summary.get("last")))],
    "Service": [(_("Cluster IP"), _s("cluster_ip")), (_("Ports"), _join("ports"))],
    "EndpointSlice": [(_("Service"), _s("service")), (_("Ready endpoints"), _of("ready", "endpoints"))],
    "Ingress": [(_("Hosts"), _join("hosts"))],
    "HTTPRoute": [(_("Hosts"), _join("hosts"))],
    "ConfigMap": [(_("Keys"), _s("keys"))],
    "Secret": [(_("Keys"), _s("keys"))],
    "PersistentVolumeClaim": [(_("Capacity"), _s("capacity")), (_("Storage class"), _s("storage_class"))],
    "PersistentVolume": [
        (_("Capacity"), lambda r: r.capacity or ""),
        (_("Claim"), lambda r: f"{r.claim_namespace}/{r.claim}" if r.claim else "—"),
        (_("Storage class"), lambda r: r.storage_class or ""),
    ],
    "StorageClass": [(_("Provisioner"), _s("provisioner"))],
    "HorizontalPodAutoscaler": [
        (_("Target"), _s("target")),
        (_("Replicas"), lambda r: f"{r.summary.get('current', 0)} ({r.summary.get('min')}–{r.summary.get('max')})"),
        (_("Current / target"), lambda r: hpa_metrics_text(r.summary.get("metrics") or [])),
    ],
    "Node": [
        (_("Roles"), _join("roles")),
        (_("CPU"), _s("cpu")),
        (_("Memory"), _s("memory")),
        (_("Kubelet"), _s("version")),
    ],
    "Event": [
        (_("Reason"), _s("reason")),
        (_("Object"), lambda r: f"{r.summary.get('object_kind', '')} {r.summary.get('object_name', '')}"),
        (_("Message"), _s("message")),
        (_("Count"), _s("count")),
    ],
}
# The column that may wrap (long messages); the others stay on one line.
WIDE_COLUMN = {"Event": _("Message")}
STATUS_HEADER = {
    "Service": _("Type"),
    "Secret": _("Type"),
    "Event": _("Type"),
    "Namespace": _("Phase"),
    "PersistentVolume": _("Phase"),
    "PersistentVolumeClaim": _("Phase"),
}
SUMMARY_LABELS = {
    "ready": _("Ready"),
    "restarts": _("Restarts"),
    "node": _("Node"),
    "ip": _("Pod IP"),
    "desired": _("Desired replicas"),
    "updated": _("Up to date"),
    "available": _("Available"),
    "roles": _("Roles"),
    "cpu": _("CPU"),
    "memory": _("Memory"),
    "pods": _("Pods allowed"),
    "gpu": _("GPUs"),
    "version": _("Kubelet version"),
    "unschedulable": _("Cordoned"),
    "succeeded": _("Succeeded"),
    "failed": _("Failed"),
    "active": _("Active"),
    "schedule": _("Schedule"),
    "last": _("Last"),
    "cluster_ip": _("Cluster IP"),
    "ports": _("Ports"),
    "endpoints": _("Endpoints"),
    "service": _("Service"),
    "hosts": _("Hosts"),
    "capacity": _("Capacity"),
    "storage_class": _("Storage class"),
    "min": _("Minimum replicas"),
    "max": _("Maximum replicas"),
    "current": _("Current replicas"),
    "target": _("Scales"),
    "reason": _("Reason"),
    "message": _("Message"),
    "count": _("Count"),
    "object_kind": _("Object kind"),
    "object_name": _("Object"),
    "keys": _("Keys"),
    "provisioner": _("Provisioner"),
}


# Conditions that report a problem when they are True; all others report health when True.
BAD_WHEN_TRUE = frozenset(
    {"MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable", "ReplicaFailure", "Failed", "Stalled"}
)


def _time(value) -> str:
    return str(value or "—").replace("T", " ").replace("Z", " UTC")


def kind_nav(user, cluster) -> list[tuple]:
    """Menu groups with the kinds this user may see in this cluster."""
    groups = []
    for label, kinds in NAV_GROUPS:
        items = [
            (KIND_LABELS[k], queries.SLUG_OF[k]) for k in kinds if queries.visibility_q(user, cluster, k) is not None
        ]
        if items:
            groups.append((label, items))
    return groups


def _cluster_context(request, cluster, active: str = "") -> dict:
    return {"cluster": cluster, "kind_nav": kind_nav(request.user, cluster), "active_slug": active}


def _partial_response(request, template: str, context: dict, partial: str):
    response = render(request, template, context, partial=partial_unless_restoring(request, partial))
    patch_vary_headers(response, ["HX-Request"])
    return response


# Overview ---------------------------------------------------------------------------------------


@login_required
@require_GET
def cluster_overview(request, cluster_id: int):
    user = request.user
    cluster = queries.cluster_for(user, cluster_id)
    now = timezone.now()
    live = request.htmx and not request.htmx.boosted and not request.headers.get("HX-History-Restore-Request")
    health = queries.health_counts(user, [cluster])[cluster.pk]
    nodes, pods = health["Node"], health["Pod"]
    attention, attention_total = queries.attention(user, cluster, now)
    for item in attention:
        queries.decorate([item.resource])
    context = {
        **_cluster_context(request, cluster),
        "freshness": queries.freshness_of(queries.sync_states([cluster.pk])[cluster.pk], now),
        "nodes_visible": queries.nodes_visible(user, cluster),
        "nodes_total": sum(nodes.values()),
        "nodes_ready": queries.ready_nodes(nodes),
        "pods": queries.status_list(pods),
        "pods_total": sum(pods.values()),
        "events": _event_rows(queries.decorate(queries.warning_events(user, cluster)), now),
        "warning_total": sum(health["Event"].values()),
        "attention": attention,
        "attention_total": attention_total,
        "now": now,
    }
    if not live:
        capacity = queries.capacity(user, cluster)
        context.update(
            capacity=capacity,
            chart_data=capacity.chart_data(),
            cpu=_capacity_words(capacity, "cpu"),
            memory=_capacity_words(capacity, "memory"),
        )
    return _partial_response(request, "clusters/inventory/overview.html", context, "live")


def _capacity_words(capacity: queries.Capacity, which: str) -> dict:
    words = queries.cpu_words if which == "cpu" else queries.bytes_words
    return {
        "capacity": words(getattr(capacity, f"{which}_capacity")),
        "requests": words(getattr(capacity, f"{which}_requests")),
        "usage": words(getattr(capacity, f"{which}_usage")),
        "requests_percent": getattr(capacity, f"{which}_requests_percent"),
        "usage_percent": getattr(capacity, f"{which}_usage_percent"),
    }


def _event_rows(rows, now):
    for row in rows:
        _event_times(row, now)
    return rows


def _event_times(row, now) -> None:
    last = row.summary.get("last")
    row.last = _time(last)
    try:
        when = parse_time(last) if isinstance(last, str) else None
    except ValueError:
        when = None
    row.last_ago = _("%(age)s ago") % {"age": queries.duration_words((now - when).total_seconds())} if when else "—"


# Lists ------------------------------------------------------------------------------------------

FILTER_KEYS = ("q", "labels", "status", "namespace", "project", "sort")


@login_required
@require_GET
def resource_list(request, cluster_id: int, kind_slug: str):
    user = request.user
    cluster = queries.cluster_for(user, cluster_id)
    kind = queries.BY_SLUG[kind_slug]
    if queries.visibility_q(user, cluster, kind.kind) is None:
        raise Http404
    params = {key: request.GET.get(key, "").strip() for key in (*FILTER_KEYS, "page")}
    listing = queries.resource_listing(user, cluster, kind.kind, params)
    now = timezone.now()
    columns = COLUMNS.get(kind.kind, [])
    base = reverse("clusters:resource_list", args=[cluster.pk, kind_slug])
    wide = WIDE_COLUMN.get(kind.kind)
    for row in queries.decorate(listing.rows):
        row.cells = [(str(getter(row)), label == wide) for label, getter in columns]
        row.age = queries.short_age(row.created, now)
        row.url = f"{base}{quote(row.ns_arg)}/{quote(row.name)}/"
    filters = {key: params[key] for key in FILTER_KEYS if params[key]}
    sort = params["sort"] or queries.default_sort(kind.kind)
    context = {
        **_cluster_context(request, cluster, kind_slug),
        "kind": kind,
        "kind_label": KIND_LABELS[kind.kind],
        "kind_slug": kind_slug,
        "listing": listing,
        "params": params,
        "headers": [label for label, _getter in columns],
        "status_header": STATUS_HEADER.get(kind.kind, _("Status")),
        "show_status": kind.kind not in ("ConfigMap", "StorageClass"),
        "base_url": base,
        "self_url": _url(base, {**filters, "page": listing.page if listing.page > 1 else ""}),
        "sort_urls": {
            key: _url(base, {**filters, "sort": _toggle(sort, key)}) for key in ("name", "namespace", "status", "age")
        },
        "sort": sort,
        "prev_url": _url(base, {**filters, "page": listing.page - 1}) if listing.page > 1 else "",
        "next_url": _url(base, {**filters, "page": listing.page + 1}) if listing.page < listing.pages else "",
        "filtered": bool(set(filters) - {"sort"}),
    }
    partial = partial_unless_restoring(request, "table")
    if partial is None or not request.htmx:
        context.update(
            statuses=queries.status_choices(user, cluster, kind.kind),
            namespaces=queries.visible_namespace_names(user, cluster) if kind.namespaced else [],
            projects=queries.project_choices(user, cluster) if kind.namespaced or kind.kind == "Namespace" else [],
        )
    return _partial_response(request, "clusters/inventory/resource_list.html", context, "table")


def _toggle(current: str, key: str) -> str:
    return f"-{key}" if current == key else key


def _url(base: str, params: dict) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in ("", None)})
    return f"{base}?{query}" if query else base


# Detail -----------------------------------------------------------------------------------------


@login_required
@require_GET
def resource_detail(request, cluster_id: int, kind_slug: str, namespace: str, name: str):
    user = request.user
    cluster = queries.cluster_for(user, cluster_id)
    kind = queries.BY_SLUG[kind_slug]
    if kind.namespaced == (namespace == "_"):
        raise Http404
    resource = queries.find_visible(user, cluster, kind.kind, "" if namespace == "_" else namespace, name)
    queries.decorate([resource])
    meta = (resource.object or {}).get("metadata") or {}
    now = timezone.now()
    node_link = _node_link(user, cluster, resource)
    context = {
        **_cluster_context(request, cluster, kind_slug),
        "kind": kind,
        "kind_label": KIND_LABELS[kind.kind],
        "kind_singular": KIND_SINGULAR[kind.kind],
        "kind_slug": kind_slug,
        "resource": resource,
        "age": queries.short_age(resource.created, now),
        "facts": _facts(resource, skip={"node"} if node_link else set()),
        "annotations": sorted((meta.get("annotations") or {}).items()),
        "labels": sorted((resource.labels or {}).items()),
        "conditions": _conditions(resource),
        "owner": queries.owner_of(user, cluster, resource),
        "sections": queries.related_sections(user, cluster, resource),
        "containers": queries.containers_of(resource) if kind.kind == "Pod" else [],
        "metrics": queries.metrics_for(user, cluster, resource),
        "node_link": node_link,
        "secret_keys": (resource.object or {}).get("keys") or [] if kind.kind == "Secret" else [],
        "list_url": reverse("clusters:resource_list", args=[cluster.pk, kind_slug]),
        "contents": _namespace_contents(user, cluster, resource) if kind.kind == "Namespace" else [],
    }
    for section in context["sections"]:
        for row in section.rows:
            row.age = queries.short_age(row.created, now)
            row.info = " · ".join(f"{label} {getter(row)}" for label, getter in COLUMNS.get(row.kind, [])[:2])
            if row.kind == "Event":
                _event_times(row, now)
    return render(request, "clusters/inventory/resource_detail.html", context, partial="detail_body")


def _namespace_contents(user, cluster, resource) -> list[tuple]:
    return [
        (
            KIND_LABELS[kind],
            count,
            reverse("clusters:resource_list", args=[cluster.pk, queries.SLUG_OF[kind]])
            + "?"
            + urlencode({"namespace": resource.name}),
        )
        for kind, count in queries.namespace_contents(user, cluster, resource.name)
    ]


def _facts(resource, skip: set[str]) -> list[tuple]:
    facts = []
    for key, value in (resource.summary or {}).items():
        if key not in SUMMARY_LABELS or key in skip or value in ("", None, []):
            continue
        if isinstance(value, bool):
            value = _("yes") if value else _("no")
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        elif key == "last":
            value = _time(value)
        facts.append((SUMMARY_LABELS[key], value))
    return facts


def _conditions(resource) -> list[dict]:
    conditions = ((resource.object or {}).get("status") or {}).get("conditions") or []
    return [
        {
            "type": c.get("type", ""),
            "ok": (c.get("status") == "True") != (c.get("type") in BAD_WHEN_TRUE),
            "status": c.get("status", ""),
            "reason": c.get("reason", ""),
            "message": c.get("message", ""),
            "since": _time(c.get("lastTransitionTime")),
        }
        for c in conditions
    ]


def _node_link(user, cluster, resource) -> str:
    node = resource.summary.get("node") if resource.kind == "Pod" else ""
    if not node or not queries.nodes_visible(user, cluster):
        return ""
    return reverse("clusters:resource_detail", args=[cluster.pk, "nodes", "_", node])
