"""The dashboard answers "is anything wrong, and where": what needs attention in every cluster the user may see,
jobs that failed or are stuck, the latest releases and how they went, then the clusters and a small card on
Kubemate's own plumbing (database, Redis, workers).

It spans apps (core's jobs and health, the clusters' inventory), so it lives in the project package rather
than in core, which knows no domain. No cluster is called: the cards read what the inventory sync stored.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.accounts import access
from apps.accounts.capabilities import WORKLOADS_VIEW
from apps.clusters.inventory.attention import attention
from apps.clusters.inventory.health import cluster_cards
from apps.clusters.inventory.related import decorate
from apps.compliance.approvals import services as approval_services
from apps.compliance.forwarding import alerts as siem_alerts
from apps.compliance.models import ChangeRequest
from apps.core import access as job_access
from apps.core import health
from apps.core.htmx import render, wants_partial
from apps.core.models import Job
from apps.releases import access as release_access
from apps.releases.models import Revision

PROBLEMS_SHOWN = 10
FAILED_JOBS_SINCE = timedelta(days=7)
STUCK_PENDING = timedelta(minutes=5)


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    return _page(request)


def _page(request: HttpRequest) -> HttpResponse:
    problems, problem_total = problems_everywhere(request.user)
    context = {
        "problems": problems,
        "problem_total": problem_total,
        "jobs_to_look_at": jobs_to_look_at(request.user),
        "approvals_waiting": approvals_waiting(request.user),
        "siem_failing": siem_alerts.failing(request.user),
        "recent_revisions": recent_revisions(request.user),
        "facts": facts(request.user),
    }
    return render(request, "kubemate/dashboard.html", context)


def problems_everywhere(user, limit: int = PROBLEMS_SHOWN) -> tuple[list[tuple], int]:
    """(cluster, Attention) pairs across the user's clusters, most urgent first, and how many there are in all."""
    found, total = [], 0
    for cluster in access.clusters(user).order_by("name"):
        items, count = attention(user, cluster, limit=limit)
        decorate([item.resource for item in items])
        total += count
        found += [(cluster, item) for item in items]
    found.sort(key=lambda pair: (pair[1].severity, pair[0].name, pair[1].resource.kind, pair[1].resource.name))
    return found[:limit], total


def jobs_to_look_at(user, limit: int = 5) -> list[Job]:
    """Jobs that failed this week, and jobs stuck: running without a heartbeat for two minutes, or not started."""
    now = timezone.now()
    stuck = Q(status=Job.Status.RUNNING, heartbeat_at__lt=now - timedelta(minutes=2)) | Q(
        status=Job.Status.PENDING, created_at__lt=now - STUCK_PENDING
    )
    failed = Q(status=Job.Status.FAILED, finished_at__gte=now - FAILED_JOBS_SINCE)
    return list(job_access.jobs(user).filter(stuck | failed)[:limit])


def approvals_waiting(user, limit: int = 5) -> tuple[list[ChangeRequest], int]:
    """Change requests waiting for this person's decision (four-eyes approval), oldest first, and how many."""
    waiting = approval_services.pending_for(user).select_related("maker", "cluster").order_by("created_at")
    rows = list(waiting[:limit])
    return rows, (len(rows) if len(rows) < limit else waiting.count())


def recent_revisions(user, limit: int = 5) -> list[Revision]:
    releases = release_access.releases(user, WORKLOADS_VIEW)
    return list(
        Revision.objects.filter(release__in=releases)
        .select_related("release__project__cluster", "actor")
        .order_by("-created_at")[:limit]
    )


@login_required
@require_GET
@never_cache
def dashboard_facts(request: HttpRequest) -> HttpResponse:
    if not wants_partial(request):  # a boosted or history-restore request gets the whole page
        response = _page(request)
        patch_vary_headers(response, ["HX-Request"])
        return response
    return render(request, "kubemate/dashboard.html", {"facts": facts(request.user)}, partial="facts")


def facts(user) -> dict:
    return {
        "database": health.database_state(),
        "redis": health.redis_state(),
        "worker": health.worker_state(),
        "clusters": cluster_cards(user),
    }
