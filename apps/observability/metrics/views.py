"""Metrics pages: the charts card of a cluster, node, namespace, workload, pod or app, and the PromQL explorer.

Each card address answers the card alone to htmx (the object's page loads it after it has shown, so the page
stays fast, and the card polls itself when automatic refresh is on) and a page of its own otherwise. Views
authorize and read the request; ``services`` asks Prometheus. Missing and forbidden objects answer the same 404.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.urls import reverse
from django.views.decorators.http import require_GET

from apps.accounts import access
from apps.accounts.capabilities import CLUSTERS_MANAGE
from apps.clusters.inventory.pages.tables import KIND_LABELS, KIND_SINGULAR
from apps.core.htmx import render, wants_partial
from apps.observability.metrics import places, services

TEMPLATE = "observability/metrics/board.html"
EXPLORER = "observability/metrics/explorer.html"


@login_required
@require_GET
def cluster_metrics(request, cluster_id: int):
    user = request.user
    cluster = access.cluster(user, cluster_id)
    if not places.may_view_cluster(user, cluster):
        raise Http404
    window = services.window_from(request.GET)
    board = services.board(user, cluster, "cluster", window)
    url = reverse("observability:cluster_metrics", args=[cluster.pk])
    return _card(request, cluster, board, url, heading=cluster.name, object_url=_overview(cluster))


@login_required
@require_GET
def resource_metrics(request, cluster_id: int, kind_slug: str, namespace: str, name: str):
    user = request.user
    cluster = access.cluster(user, cluster_id)
    kind = places.SLUGS[kind_slug]
    cluster_scoped = kind in ("Node", "Namespace")
    if cluster_scoped != (namespace == "_"):
        raise Http404
    namespace = "" if namespace == "_" else namespace
    resource = access.resource(user, cluster, kind, namespace, name)
    if not places.may_view(user, cluster, kind, namespace, name):
        raise Http404
    window = services.window_from(request.GET)
    if kind == "Namespace":
        board = services.board(user, cluster, "namespace", window, namespace=name)
    else:
        board = services.board(user, cluster, places.PLACES[kind], window, namespace=namespace, name=name)
    url = reverse("observability:resource_metrics", args=[cluster.pk, kind_slug, namespace or "_", name])
    object_url = reverse("clusters:resource_detail", args=[cluster.pk, kind_slug, namespace or "_", name])
    return _card(
        request,
        cluster,
        board,
        url,
        heading=resource.name,
        kind=KIND_SINGULAR[kind],
        object_url=object_url,
        list_label=KIND_LABELS[kind],
        list_url=reverse("clusters:resource_list", args=[cluster.pk, kind_slug]),
    )


@login_required
@require_GET
def app_metrics(request, cluster_id: int, namespace: str, name: str):
    """An app's golden signals (request rate, errors, latency) read under ``service=<name>``, as its release
    names its Service; the app is known by its Deployment in the inventory."""
    user = request.user
    cluster = access.cluster(user, cluster_id)
    access.resource(user, cluster, "Deployment", namespace, name)
    if not places.may_view_app(user, cluster, namespace):
        raise Http404
    window = services.window_from(request.GET)
    board = services.board(user, cluster, "app", window, namespace=namespace, name=name)
    url = reverse("observability:app_metrics", args=[cluster.pk, namespace, name])
    object_url = reverse("clusters:resource_detail", args=[cluster.pk, "deployments", namespace, name])
    return _card(request, cluster, board, url, heading=name, object_url=object_url, golden=True)


def _overview(cluster) -> str:
    return reverse("clusters:cluster_overview", args=[cluster.pk])


def _card(request, cluster, board: services.Board, url: str, *, heading: str, object_url: str, **extra):
    user = request.user
    can_query = places.may_query(user, cluster)
    window = board.window
    if can_query:
        explorer = reverse("observability:explorer")
        for drawn in board.charts:
            drawn.explore = [
                (text, f"{explorer}?{urlencode({'cluster': cluster.pk, 'query': text, **_range_only(window)})}")
                for text in drawn.queries
            ]
    context = {
        "cluster": cluster,
        "board": board,
        "window": window,
        "ranges": services.RANGES,
        "refreshes": services.REFRESH,
        "url": url,
        "poll_url": f"{url}?{urlencode(window.params())}",
        "page_url": f"{url}?{urlencode(window.params())}",
        "full": not wants_partial(request),
        "can_query": can_query,
        "settings_url": reverse("clusters:registry_settings", args=[cluster.pk])
        if board.missing and access.may(user, CLUSTERS_MANAGE)
        else "",
        "step": services.step_words(window.step),
        "chart_data": board.chart_data(),
        "heading": heading,
        "object_url": object_url,
        "overview_url": _overview(cluster),
        **extra,
    }
    return render(request, TEMPLATE, context, partial="card")


def _range_only(window: services.Window) -> dict:
    return {k: v for k, v in window.params().items() if k != "refresh"}


@login_required
@require_GET
def explorer(request):
    """Type PromQL, run it over a time range: a chart and the last value of each series (``metrics.query``)."""
    user = request.user
    clusters = list(places.query_clusters(user))
    if not clusters:
        raise Http404
    chosen = str(request.GET.get("cluster") or "")
    cluster = next((c for c in clusters if str(c.pk) == chosen), clusters[0])
    text = str(request.GET.get("query") or "")
    window = services.window_from(request.GET)
    board = services.explore(user, cluster, text, window) if text.strip() else None
    params = {"cluster": cluster.pk, "query": text, **window.params()}
    context = {
        "clusters": clusters,
        "cluster": cluster,
        "text": text[: services.QUERY_MAX_CHARS * 2],
        "board": board,
        "window": window,
        "ranges": services.RANGES,
        "refreshes": services.REFRESH,
        "url": reverse("observability:explorer"),
        "poll_url": f"{reverse('observability:explorer')}?{urlencode(params)}",
        "step": services.step_words(window.step),
        "chart_data": board.chart_data() if board else {},
        "settings_url": reverse("clusters:registry_settings", args=[cluster.pk])
        if board and board.missing and access.may(user, CLUSTERS_MANAGE)
        else "",
        "max_chars": services.QUERY_MAX_CHARS,
    }
    return render(request, EXPLORER, context, partial="results")
