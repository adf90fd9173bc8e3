"""The page of one inventory object: facts, labels, conditions, containers, related objects, events.

Missing objects and objects outside the user's bindings both answer 404.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from apps.accounts import access
from apps.clusters import values
from apps.clusters.inventory import related
from apps.clusters.inventory.lists import BY_SLUG, SLUG_OF
from apps.clusters.inventory.pages.nav import cluster_context
from apps.clusters.inventory.pages.tables import (
    BAD_WHEN_TRUE,
    COLUMNS,
    KIND_LABELS,
    KIND_SINGULAR,
    SUMMARY_LABELS,
    event_times,
    time_text,
)
from apps.core.htmx import render


@login_required
@require_GET
def resource_detail(request, cluster_id: int, kind_slug: str, namespace: str, name: str):
    user = request.user
    cluster = access.cluster(user, cluster_id)
    kind = BY_SLUG[kind_slug]
    if kind.namespaced == (namespace == "_"):
        raise Http404
    resource = access.resource(user, cluster, kind.kind, "" if namespace == "_" else namespace, name)
    related.decorate([resource])
    meta = (resource.object or {}).get("metadata") or {}
    now = timezone.now()
    node_link = _node_link(user, cluster, resource)
    context = {
        **cluster_context(request, cluster, kind_slug),
        "kind": kind,
        "kind_label": KIND_LABELS[kind.kind],
        "kind_singular": KIND_SINGULAR[kind.kind],
        "kind_slug": kind_slug,
        "resource": resource,
        "now": now,
        "facts": _facts(resource, skip={"node"} if node_link else set()),
        "annotations": sorted((meta.get("annotations") or {}).items()),
        "labels": sorted((resource.labels or {}).items()),
        "conditions": _conditions(resource),
        "owner": related.owner_of(user, cluster, resource),
        "sections": related.related_sections(user, cluster, resource),
        "containers": related.containers_of(resource) if kind.kind == "Pod" else [],
        "metrics": related.metrics_for(user, cluster, resource),
        "node_link": node_link,
        "secret_keys": (resource.object or {}).get("keys") or [] if kind.kind == "Secret" else [],
        "config_data": _config_data(resource) if kind.kind == "ConfigMap" else None,
        "list_url": reverse("clusters:resource_list", args=[cluster.pk, kind_slug]),
        "contents": _namespace_contents(user, cluster, resource) if kind.kind == "Namespace" else [],
    }
    for section in context["sections"]:
        for row in section.rows:
            row.info = " · ".join(f"{label} {getter(row)}" for label, getter in COLUMNS.get(row.kind, [])[:2])
            if row.kind == "Event":
                event_times(row, now)
    return render(request, "clusters/inventory/resource_detail.html", context, partial="detail_body")


def _namespace_contents(user, cluster, resource) -> list[tuple]:
    return [
        (
            KIND_LABELS[kind],
            count,
            reverse("clusters:resource_list", args=[cluster.pk, SLUG_OF[kind]])
            + "?"
            + urlencode({"namespace": resource.name}),
        )
        for kind, count in related.namespace_contents(user, cluster, resource.name)
    ]


CONFIG_VALUE_SHOWN = 64 * 1024


def _config_data(resource) -> dict:
    """A ConfigMap's keys and values as the inventory holds them (a value cut at 64 KiB; binary keys by size)."""
    obj = resource.object or {}
    data = obj.get("data") or {}
    binary = obj.get("binaryData") or {}
    return {
        "values": [
            {"key": key, "value": str(value)[:CONFIG_VALUE_SHOWN], "cut": len(str(value)) > CONFIG_VALUE_SHOWN}
            for key, value in sorted(data.items())
        ],
        "binary": [{"key": key, "bytes": len(str(value)) * 3 // 4} for key, value in sorted(binary.items())],
    }


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
            value = time_text(value)
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
            "since": time_text(c.get("lastTransitionTime")),
        }
        for c in conditions
    ]


def _node_link(user, cluster, resource) -> str:
    node = resource.summary.get("node") if resource.kind == "Pod" else ""
    if not node or not values.is_dns_subdomain(node) or not access.nodes_visible(user, cluster):
        # A node name no node can have (a broken or hostile cluster) is shown as text, without a link.
        return ""
    return reverse("clusters:resource_detail", args=[cluster.pk, "nodes", "_", node])
