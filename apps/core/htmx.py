"""The one htmx decision: a partial for htmx's own requests, the whole page otherwise.

Every view that can answer both goes through ``render`` so the rule lives in one place; the answers
htmx reads from headers (stop polling, redirect the page, trigger an event) are django-htmx's helpers.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render as django_render
from django.template.loader import render_to_string
from django.utils.cache import patch_vary_headers
from django_htmx.http import HttpResponseStopPolling


def wants_partial(request: HttpRequest) -> bool:
    """True for htmx's own requests; a boosted link and a history restore both want the whole page.

    htmx restores history from the server when the page fell out of its cache, and swaps the answer
    in as the whole body: a fragment there would leave the person on a page without its frame.
    """
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render(
    request: HttpRequest,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    partial: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """Render ``template#partial`` when ``wants_partial(request)`` and ``template`` otherwise.

    With a partial the same address answers a fragment or a page, so the answer varies on
    ``HX-Request``: no cache (nor the browser's back button) hands one where the other was asked for.
    """
    if partial and wants_partial(request):
        template = f"{template}#{partial}"
    response = django_render(request, template, context or {}, status=status)
    if partial:
        patch_vary_headers(response, ["HX-Request"])
    return response


def stop_polling(request: HttpRequest, template: str, context: dict[str, Any] | None = None) -> HttpResponse:
    """The last answer to a polling element (status 286): htmx swaps it in and stops polling."""
    return HttpResponseStopPolling(render_to_string(template, context or {}, request))
