"""Log pages: the search (form, volume histogram, lines), its results partial, the context around a line, the live
tail's polls and the download.

Every page reads the same GET parameters (``forms.LogSearchForm``) and answers only people who may read logs
somewhere (``logs.view``; others get 404). Views authorize and read the request; ``services`` builds the query
through ``logstore.for_user`` and asks the store, ``live`` and ``download`` do the rest. Nothing here changes
anything, so every view is GET; the download alone writes an audit event.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render as django_render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET
from django_htmx.http import push_url

from apps.core.htmx import render, wants_partial
from apps.observability import logstore
from apps.observability.logs import download, forms, live, services

TEMPLATE = "observability/logs/search.html"
LANGUAGES = {"victorialogs": "LogsQL", "loki": "LogQL"}


def _open(request) -> services.Search:
    """The search the request asks for, in a cluster whose logs the person may read; 404 when there is none."""
    clusters = services.clusters_for(request.user)
    if not clusters:
        raise Http404
    return services.search_from(request.user, request.GET, clusters)


def _context(request, search: services.Search, answer: services.Results | None = None) -> dict:
    user, cluster = request.user, search.cluster
    page = reverse("observability:logs_search")
    namespaces = services.namespaces_for(user, cluster)
    if search.namespace and search.namespace not in namespaces:
        namespaces = [search.namespace, *namespaces]  # shown as asked, and refused with a sentence
    query = search.query_string()
    return {
        "clusters": search.clusters,
        "cluster": cluster,
        "search": search,
        "answer": answer,
        "namespaces": namespaces,
        "whole_cluster": services.sees_whole_cluster(user, cluster),
        "names": services.name_choices(user, cluster, search.namespace),
        "levels": forms.LEVEL_CHOICES,
        "ranges": forms.RANGE_CHOICES,
        "limits": forms.LIMITS,
        "may_query": services.may_query(user, cluster),
        "language": LANGUAGES.get(cluster.logs_backend, "LogsQL"),
        "page_url": page,
        "page_query": f"{page}?{query}",
        "results_url": reverse("observability:logs_results"),
        "context_url": reverse("observability:logs_context"),
        "tail_url": f"{reverse('observability:logs_tail')}?{urlencode(search.params(window=False))}",
        "tail_from": timezone.now().isoformat(),
        "downloads": _downloads(search),
        "chart": answer.chart if answer else {},
        "default_download": forms.DEFAULT_DOWNLOAD_LIMIT,
    }


def _downloads(search: services.Search) -> list[tuple[int, str, str, str]]:
    """(limit, format, address, the limit as written on the button) of each download the page offers."""
    base = reverse("observability:logs_download")
    return [
        (limit, fmt, f"{base}?{search.query_string(limit=str(limit), format=fmt)}", f"{limit:,}")
        for fmt in forms.DOWNLOAD_FORMATS
        for limit in forms.DOWNLOAD_LIMITS
    ]


@login_required
@require_GET
def logs_search(request):
    """The page: the form, and the results of what it asks (the last hour of the person's logs to begin with)."""
    search = _open(request)
    answer = services.results(request.user, search)
    return django_render(request, TEMPLATE, _context(request, search, answer))


@login_required
@require_GET
def logs_results(request):
    """The results partial the form swaps in (the page's address is pushed to the history); with ``older=1`` the
    next page of older lines alone, which the "older" button swaps in place of itself."""
    search = _open(request)
    older = request.GET.get("older") == "1"
    answer = services.results(request.user, search, histogram=not older)
    context = _context(request, search, answer)
    if older and wants_partial(request):
        return django_render(request, f"{TEMPLATE}#older_page", context)
    response = render(request, TEMPLATE, context, partial="results")
    if wants_partial(request):
        response = push_url(response, context["page_query"])
    return response


@login_required
@require_GET
def logs_context(request):
    """Ten lines before and ten after one line, of the same stream, the line marked (a partial under the line)."""
    search = _open(request)
    around = live.context(request.user, search, request.GET)
    return django_render(request, f"{TEMPLATE}#context", {"around": around, "in_context": True})


@login_required
@require_GET
def logs_tail(request):
    """One poll of the live tail: the lines after the cursor (``after``, ``seen``), oldest first, with the next
    cursor. See ``live`` for why the tail polls instead of holding a stream open."""
    search = _open(request)
    seen = [str(s)[:500] for s in request.GET.getlist("seen")[: live.SEEN_MAX]]
    answer = live.tail(request.user, search, after=request.GET.get("after", ""), seen=seen)
    context = {
        "tail": answer,
        "seen_json": json.dumps(answer.seen),
        "context_url": reverse("observability:logs_context"),
    }
    return django_render(request, f"{TEMPLATE}#tail", context)


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
