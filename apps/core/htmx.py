"""The htmx render helper: a partial for htmx requests, the whole page otherwise."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render as django_render

# htmx stops polling when a response carries this status.
STOP_POLLING = 286


def render(
    request: HttpRequest,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    partial: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """Render ``template#partial`` for non-boosted htmx requests and ``template`` otherwise."""
    htmx = getattr(request, "htmx", None)
    if partial and htmx and not htmx.boosted:
        template = f"{template}#{partial}"
    return django_render(request, template, context or {}, status=status)
