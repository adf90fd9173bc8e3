"""The dashboard: Kubemate's own services and, from the inventory, each cluster the user may see.

It spans apps (core's jobs and health, the clusters' inventory), so it lives in the project package rather
than in core, which knows no domain. No cluster is called: the cards read what the inventory sync stored.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.clusters.inventory.health import cluster_cards
from apps.core import access as job_access
from apps.core import health
from apps.core.htmx import render


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    context = {"recent_jobs": job_access.jobs(request.user)[:5], "facts": facts(request.user)}
    return render(request, "kubemate/dashboard.html", context)


@login_required
@require_GET
@never_cache
def dashboard_facts(request: HttpRequest) -> HttpResponse:
    return render(request, "kubemate/dashboard.html", {"facts": facts(request.user)}, partial="facts")


def facts(user) -> dict:
    return {
        "database": health.database_state(),
        "redis": health.redis_state(),
        "worker": health.worker_state(),
        "clusters": cluster_cards(user),
    }
