"""Log pages: the search (form, volume histogram, lines), its results partial (the lines; the histogram comes by a
request of its own the partial makes once it is in the page), the context around a line, the live tail's polls
and the download.

Every page reads the same GET parameters (``forms.LogSearchForm``) and answers only people who may read logs
somewhere (``logs.view``; others get 404). Views authorize and read the request; ``services`` builds the query
through ``logstore.for_user`` and asks the store, ``live`` and ``download`` do the rest. Nothing here changes
anything, so every view is GET; the download alone writes an audit event.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render as django_render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET
from django_htmx.http import push_url

from apps.core.htmx import render, wants_partial
from apps.observability import logstore
from apps.observability.logs import download, forms, live, services
from apps.observability.logs.shaping import rows_html

TEMPLATE = "observability/logs/search.html"
LANGUAGES = {"victorialogs": "LogsQL", "loki": "LogQL"}


def _open(request) -> services.Search:
    """The search the request asks for, in a cluster whose logs the person may read; 404 when there is none."""
    clusters = services.clusters_for(request.user)
    if not clusters:
        raise Http404
    return services.search_from(request.user, request.GET, clusters)


def _context(request, search: services.Search, answer: services.Results | None = None, *, form: bool = True) -> dict:
    """What the page's template reads; ``form=False`` for the results partial alone, which does not show the form
    (its lists of namespaces, pods and workloads are the inventory's, read from the database)."""
    user, cluster = request.user, search.cluster
    page = reverse("observability:logs_search")
    query = search.query_string()
    context = {
        "cluster": cluster,
        "search": search,
        "answer": answer,
        "page_url": page,
        "page_query": f"{page}?{query}",
        "results_url": reverse("observability:logs_results"),
        "tail_url": f"{reverse('observability:logs_tail')}?{urlencode(search.params(window=False))}",
        "tail_from": timezone.now().isoformat(),
        "downloads": _downloads(query),
        "chart": answer.chart if answer else {},
        "histogram_url": f"{reverse('observability:logs_histogram')}?{answer.histogram_query}"
        if answer and answer.histogram_query
        else "",
        "rows": rows_html(answer.lines) if answer else "",
        "default_download": forms.DEFAULT_DOWNLOAD_LIMIT,
    }
    if form:
        namespaces = services.namespaces_for(user, cluster)
        if search.namespace and search.namespace not in namespaces:
            namespaces = [search.namespace, *namespaces]  # shown as asked, and refused with a sentence
        context |= {
            "clusters": search.clusters,
            "namespaces": namespaces,
            "whole_cluster": services.sees_whole_cluster(user, cluster),
            "names": services.name_choices(user, cluster, search.namespace),
            "levels": forms.LEVEL_CHOICES,
            "ranges": forms.RANGE_CHOICES,
            "limits": forms.LIMITS,
            "may_query": services.may_query(user, cluster),
            "language": LANGUAGES.get(cluster.logs_backend, "LogsQL"),
        }
    return context


def _partial(name: str, context: dict, *, vary: bool = False) -> HttpResponse:
    """A partial of the page, rendered without the request: no context processor runs (the console's sidebar,
    the version), which no partial shows and which cost a request more than the rows of 200 lines do now."""
    response = HttpResponse(render_to_string(f"{TEMPLATE}#{name}", context))
    if vary:
        patch_vary_headers(response, ["HX-Request"])  # as apps.core.htmx.render: this address is a page too
    return response


def _downloads(query: str) -> list[tuple[int, str, str, str]]:
    """(limit, format, address, the limit as written on the button) of each download the page offers; ``query`` is
    the search's own query string (``Search.query_string()``)."""
    base = reverse("observability:logs_download")
    return [
        (limit, fmt, f"{base}?{query}&{urlencode([('limit', str(limit)), ('format', fmt)])}", f"{limit:,}")
        for fmt in forms.DOWNLOAD_FORMATS
        for limit in forms.DOWNLOAD_LIMITS
    ]


@login_required
@require_GET
def logs_search(request):
    """The page: the form, and the results of what it asks (the last hour of the person's logs to begin with)."""
    search = _open(request)
    answer = services.results(request.user, search)  # the whole page: the histogram with the lines
    return django_render(request, TEMPLATE, _context(request, search, answer))


@login_required
@require_GET
def logs_results(request):
    """The results partial the form swaps in (the page's address is pushed to the history): the lines, and a
    placeholder that asks ``logs_histogram`` for the volume histogram once it is in the page, so the lines do not
    wait for the histogram (over a long window the slower of the two requests). With ``older=1`` the next page of
    older lines alone, which the "older" button swaps in place of itself. Asked as a whole page (not by htmx), the
    histogram comes with the lines as on the search page."""
    search = _open(request)
    older = request.GET.get("older") == "1"
    if older:
        histogram = services.HISTOGRAM_NONE
    else:
        histogram = services.HISTOGRAM_LATER if wants_partial(request) else services.HISTOGRAM_INLINE
    answer = services.results(request.user, search, histogram=histogram)
    context = _context(request, search, answer, form=not wants_partial(request))
    if not wants_partial(request):
        return render(request, TEMPLATE, context, partial="results")  # the whole page
    if older:
        return _partial("older_page", context, vary=True)
    return push_url(_partial("results", context, vary=True), context["page_query"])


@login_required
@require_GET
def logs_histogram(request):
    """The volume histogram of a search (the results partial's placeholder asks for it): the chart card and its
    data, or nothing when there is nothing to draw. The same parameters as the results, the window pinned."""
    search = _open(request)
    answer = services.histogram(request.user, search)
    return _partial("histogram", {"answer": answer, "chart": answer.chart})


@login_required
@require_GET
def logs_context(request):
    """Ten lines before and ten after one line, of the same stream, the line marked (a partial under the line)."""
    search = _open(request)
    around = live.context(request.user, search, request.GET)
    return _partial("context", {"around": around, "rows": rows_html(around.lines, in_context=True)})


@login_required
@require_GET
def logs_tail(request):
    """One poll of the live tail: the lines after the cursor (``after``, ``seen``), oldest first, with the next
    cursor. See ``live`` for why the tail polls instead of holding a stream open."""
    search = _open(request)
    seen = [str(s)[:500] for s in request.GET.getlist("seen")[: live.SEEN_MAX]]
    answer = live.tail(request.user, search, after=request.GET.get("after", ""), seen=seen)
    return _partial("tail", {"tail": answer, "seen_json": json.dumps(answer.seen), "rows": rows_html(answer.lines)})


@login_required
@require_GET
def logs_download(request):
    """The search's lines as a file (text or NDJSON), at most 1,000, 10,000 or 100,000 of them, read as the person
    and audited when the file ends. A refusal is the search page with its sentence, not a file."""
    search = _open(request)
    form = forms.DownloadForm(request.GET)
    limit, fmt = forms.DEFAULT_DOWNLOAD_LIMIT, "text"
    if form.is_valid():
        limit, fmt = form.cleaned_data["limit"], form.cleaned_data["format"] or "text"
    else:
        search.problems.append(_("Choose 1,000, 10,000 or 100,000 lines, as text or NDJSON."))
    try:
        chunks = download.download(request.user, search, limit=limit, fmt=fmt, request=request)
    except (services.SearchRefused, logstore.LogStoreError) as exc:
        answer = services.Results(search=search, sentence="" if search.problems else str(exc))
        return django_render(request, TEMPLATE, _context(request, search, answer))
    content_type = "application/x-ndjson" if fmt == "ndjson" else "text/plain; charset=utf-8"
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{download.download_name(search, fmt)}"'
    response["Cache-Control"] = "no-store"
    return response
