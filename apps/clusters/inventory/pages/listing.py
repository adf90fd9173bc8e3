"""The list of one kind in one cluster: search, label selector, status, namespace and project filters,
sorting and pages, all in the database. The table partial answers htmx's filter and page requests."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from apps.accounts import access
from apps.clusters.inventory import lists
from apps.clusters.inventory.pages.nav import cluster_context
from apps.clusters.inventory.pages.row_actions import ActionCells
from apps.clusters.inventory.pages.tables import COLUMNS, KIND_LABELS, STATUS_HEADER, WIDE_COLUMN
from apps.clusters.inventory.related import decorate
from apps.clusters.inventory.words import bytes_words, cpu_words
from apps.core.htmx import render, wants_partial

FILTER_KEYS = ("q", "labels", "status", "namespace", "project", "sort")


def node_usage(user, cluster, rows) -> None:
    """Give each node row its CPU and memory use against allocatable (one query for the page's nodes)."""
    names = [row.name for row in rows]
    metrics = {
        m.name: m.summary or {}
        for m in access.resources(user, cluster, "NodeMetrics").filter(name__in=names).only("name", "summary")
    }
    for row in rows:
        used, summary = metrics.get(row.name), row.summary or {}
        row.usage = None
        if used is None:
            continue
        row.usage = [
            _bar(_("CPU"), used.get("cpu_millicores"), summary.get("cpu_allocatable_m"), cpu_words),
            _bar(_("Memory"), used.get("memory_bytes"), summary.get("memory_allocatable_b"), bytes_words),
        ]


def _bar(label, used, allocatable, words) -> dict:
    percent = round(100 * used / allocatable) if used is not None and allocatable else None
    return {
        "label": label,
        "percent": percent,
        "width": min(percent or 0, 100),
        "text": f"{words(used)} / {words(allocatable)}",
    }


@login_required
@require_GET
def resource_list(request, cluster_id: int, kind_slug: str):
    user = request.user
    cluster = access.cluster(user, cluster_id)
    kind = lists.BY_SLUG[kind_slug]
    if access.resources_q(user, cluster, kind.kind) is None:
        raise Http404
    params = {key: request.GET.get(key, "").strip() for key in (*FILTER_KEYS, "page")}
    listing = lists.resource_listing(user, cluster, kind.kind, params)
    columns = COLUMNS.get(kind.kind, [])
    base = reverse("clusters:resource_list", args=[cluster.pk, kind_slug])
    wide = WIDE_COLUMN.get(kind.kind)
    cells = ActionCells(request, cluster, kind.kind)
    # Which column wraps, decided once (comparing lazily translated labels on every row costs a translation each).
    getters = [(getter, label == wide) for label, getter in columns]
    for row in decorate(listing.rows):
        row.cells = [(str(getter(row)), is_wide) for getter, is_wide in getters]
        row.url = f"{base}{quote(row.ns_arg)}/{quote(row.name)}/"
        if kind.kind == "Event":
            about_kind, about_name = (
                (row.summary or {}).get("object_kind", ""),
                (row.summary or {}).get("object_name", ""),
            )
            row.about = f"{about_kind} {about_name}".strip()
            slug = lists.SLUG_OF.get(about_kind)
            row.about_url = (
                reverse("clusters:resource_detail", args=[cluster.pk, slug, row.namespace or "_", about_name])
                if slug and about_name
                else ""
            )
        # Row actions behind the same capabilities as the detail page's buttons (the scale form stays there).
        row.actions = cells.buttons(row.namespace, row.name, row.summary)
        row.actions_html = cells.cell(row.actions, row.url)
    if kind.kind == "Node":
        node_usage(user, cluster, listing.rows)
    filters = {key: params[key] for key in FILTER_KEYS if params[key]}
    sort = params["sort"] or lists.default_sort(kind.kind)
    context = {
        **cluster_context(request, cluster, kind_slug),
        "kind": kind,
        "kind_label": KIND_LABELS[kind.kind],
        "kind_slug": kind_slug,
        "listing": listing,
        "params": params,
        "now": timezone.now(),
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
    if not wants_partial(request):
        # The filter menus belong to the whole page; the table partial does without them.
        context.update(
            statuses=lists.status_choices(user, cluster, kind.kind),
            namespaces=access.namespace_names(user, cluster) if kind.namespaced else [],
            projects=lists.project_choices(user, cluster) if kind.namespaced or kind.kind == "Namespace" else [],
        )
    return render(request, "clusters/inventory/resource_list.html", context, partial="table")


def _toggle(current: str, key: str) -> str:
    return f"-{key}" if current == key else key


def _url(base: str, params: dict) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in ("", None)})
    return f"{base}?{query}" if query else base
