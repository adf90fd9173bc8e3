"""The observability stack's status page: each cluster's Prometheus, Alertmanager, log store and Jaeger."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.core.htmx import render
from apps.observability.status import services


@login_required
@require_GET
@never_cache
def stack_status(request):
    """The page shows at once; the systems are asked by its htmx partial (a dead system costs its timeout there)."""
    targets = services.clusters(request.user)
    if not targets:
        raise Http404
    asked = request.GET.get("cluster", "")
    if asked.isdigit():
        targets = [c for c in targets if c.pk == int(asked)] or targets
    context = {"targets": targets, "cluster": asked if asked.isdigit() else ""}
    if request.htmx:
        context["statuses"] = services.read(request.user, targets)
    return render(request, "observability/status/status.html", context, partial="results")
