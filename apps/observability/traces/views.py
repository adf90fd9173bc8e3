"""Trace pages: the search (form, latency scatter, results), one trace's waterfall, the service graph.

Every page answers only people who read traces somewhere (``traces.view``; others get 404). Views authorize and
read the request; ``services`` asks Jaeger through its door and decides what the person sees. A Jaeger that is not
set or does not answer is a sentence on the page (with a link to the cluster's settings for ``clusters.manage``),
never an error page; a trace that is missing or not the person's answers 404 with the same sentence.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from apps.accounts import access
from apps.accounts.capabilities import CLUSTERS_MANAGE
from apps.core.deferred import render as words
from apps.core.htmx import render
from apps.observability import jaeger
from apps.observability.traces import forms, services

SEARCH = "observability/traces/search.html"
TRACE = "observability/traces/trace.html"
GRAPH = "observability/traces/dependencies.html"
LOG_PADDING = timedelta(seconds=30)  # around a trace's time in its pods' logs: clocks and shippers lag


def _chosen(request) -> tuple[list, object]:
    """The clusters the person reads traces in, and the one asked for (the first by name otherwise); 404 when
    there is none."""
    found = services.clusters(request.user)
    if not found:
        raise Http404
    asked = str(request.GET.get("cluster") or "")
    return found, next((c for c in found if str(c.pk) == asked), found[0])


def _settings_url(user, cluster) -> str:
    return reverse("clusters:registry_settings", args=[cluster.pk]) if access.may(user, CLUSTERS_MANAGE) else ""


def _logs_url(**params) -> str:
    """The log search with ``params``, or "" while the log pages are not there."""
    try:
        return f"{reverse('observability:logs_search')}?{urlencode({k: v for k, v in params.items() if v})}"
    except NoReverseMatch:
        return ""


@login_required
@require_GET
def trace_search(request):
    """The search page. Choosing another cluster or service (``choose=1``) refreshes the form's choices without
    searching; the form's submission swaps in the form and results (htmx) and pushes the address."""
    user = request.user
    clusters, cluster = _chosen(request)
    form = forms.TraceSearchForm(request.GET)
    window = forms.window_from(request.GET)
    valid = form.is_valid()
    data = form.cleaned_data if valid else {}
    failure, service_names, operation_names = None, [], []
    try:
        service_names = services.services_for(user, cluster)
        if data.get("service"):
            operation_names = services.operations_for(user, cluster, data["service"])
    except jaeger.JaegerError as exc:
        failure = exc
    results = None
    query = form.query(window) if valid else None
    if failure is not None:
        results = services.Results(sentence=words(failure.stored), missing=isinstance(failure, jaeger.NotConfigured))
    elif query is not None and not window.problem and request.GET.get("choose") != "1":
        results = services.search(user, cluster, query)
        for found in results.found:
            found.url = reverse("observability:trace_detail", args=[cluster.pk, found.trace_id])
    namespaces = services.namespaces_of(user, cluster)
    page = reverse("observability:trace_search")
    params = {k: v for k, v in request.GET.items() if k != "choose"}
    context = {
        "clusters": clusters,
        "cluster": cluster,
        "form": form,
        "values": {
            "service": request.GET.get("service", "")[: forms.NAME_MAX],
            "operation": request.GET.get("operation", "")[: forms.NAME_MAX],
            "namespace": request.GET.get("namespace", "")[:63],
            "tags": request.GET.get("tags", "")[:4000],
            "min_duration": request.GET.get("min_duration", "")[:20],
            "max_duration": request.GET.get("max_duration", "")[:20],
            "limit": data.get("limit") or forms.DEFAULT_LIMIT,
        },
        "service_names": service_names,
        "operation_names": operation_names,
        "namespace_names": sorted(namespaces) if namespaces is not None else [],
        "window": window,
        "ranges": forms.RANGES,
        "limits": forms.LIMITS,
        "results": results,
        "scatter": results.scatter() if results else {},
        "page_url": page,
        "page_query": f"{page}?{urlencode(params)}",
        "settings_url": _settings_url(user, cluster) if results and results.missing else "",
        "graph_url": f"{reverse('observability:trace_dependencies')}?{urlencode({'cluster': cluster.pk})}",
    }
    return render(request, SEARCH, context, partial="search")


@login_required
@require_GET
def trace_detail(request, cluster_id: int, trace_id: str):
    user = request.user
    cluster = services.cluster(user, cluster_id)
    context = {"cluster": cluster, "trace_id": trace_id[:32], "sentence": "", "settings_url": ""}
    context["search_url"] = f"{reverse('observability:trace_search')}?{urlencode({'cluster': cluster.pk})}"
    try:
        trace = services.open_trace(user, cluster, trace_id)
    except jaeger.NotFound:
        context["sentence"] = services.missing_sentence(trace_id.lower())
        return render(request, TRACE, context, status=404)
    except jaeger.JaegerError as exc:
        context["sentence"] = words(exc.stored)
        if isinstance(exc, jaeger.NotConfigured):
            context["settings_url"] = _settings_url(user, cluster)
        return render(request, TRACE, context)
    drawn = services.waterfall(user, cluster, trace)
    start, end = trace.start - LOG_PADDING, trace.end + LOG_PADDING
    for row in drawn.rows:
        process = row.span.process
        row.logs_url = (
            _logs_url(
                cluster=cluster.pk,
                namespace=process.namespace,
                pod=process.pod,
                start=start.isoformat(),
                end=end.isoformat(),
            )
            if not row.hidden and process.namespace and process.pod
            else ""
        )
    root = trace.root
    context.update(
        trace=trace,
        drawn=drawn,
        root=root if root is not None and not next(r for r in drawn.rows if r.span is root).hidden else None,
        trace_logs_url=_logs_url(cluster=cluster.pk, q=trace.trace_id, start=start.isoformat(), end=end.isoformat()),
        search_url=f"{reverse('observability:trace_search')}?{urlencode({'cluster': cluster.pk})}",
    )
    return render(request, TRACE, context)


@login_required
@require_GET
def trace_dependencies(request):
    user = request.user
    clusters, cluster = _chosen(request)
    window = forms.window_from(request.GET)
    graph = services.graph(user, cluster, window.start, window.end)
    page = reverse("observability:trace_dependencies")
    context = {
        "clusters": clusters,
        "cluster": cluster,
        "window": window,
        "ranges": forms.RANGES,
        "graph": graph,
        "chart": graph.chart(),
        "page_url": page,
        "settings_url": _settings_url(user, cluster) if graph.missing else "",
        "search_url": f"{reverse('observability:trace_search')}?{urlencode({'cluster': cluster.pk})}",
        "outside_label": _("outside your projects"),
    }
    return render(request, GRAPH, context, partial="graph")
