"""Dashboard, job pages and the health endpoints."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from apps.core import health
from apps.core.htmx import STOP_POLLING, render
from apps.core.jobs import start_job
from apps.core.models import Job
from apps.core.tasks import demo_progress


def visible_jobs(user) -> QuerySet[Job]:
    """Jobs a user may see: their own; superusers see all."""
    jobs = Job.objects.select_related("actor")
    return jobs if user.is_superuser else jobs.filter(actor=user)


def access_job(request: HttpRequest, job_id) -> Job:
    """Fetch a job the user may see; missing and forbidden both answer 404."""
    return get_object_or_404(visible_jobs(request.user), pk=job_id)


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    context = {"recent_jobs": visible_jobs(request.user)[:5], "facts": _facts()}
    return render(request, "core/dashboard.html", context)


@login_required
@require_GET
@never_cache
def dashboard_facts(request: HttpRequest) -> HttpResponse:
    return render(request, "core/dashboard.html", {"facts": _facts()}, partial="facts")


def _facts() -> dict:
    from apps.clusters.facts import cluster_facts

    return {
        "database": health.database_state(),
        "redis": health.redis_state(),
        "worker": health.worker_state(),
        "clusters": cluster_facts(),
    }


@login_required
@require_POST
def demo_job_start(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise Http404
    job = start_job(task=demo_progress, title=_("Demo job"), actor=request.user, target="kubemate/demo")
    return render(request, "core/demo_job_started.html", {"job": job}, status=201)


@login_required
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = visible_jobs(request.user)[:100]
    return render(request, "core/job_list.html", {"jobs": jobs})


@login_required
@require_GET
def job_detail(request: HttpRequest, job_id) -> HttpResponse:
    job = access_job(request, job_id)
    return render(request, "core/job_detail.html", {"job": job, "log_lines": job.log_lines.all()[:1000]})


@require_GET
@never_cache
def job_status(request: HttpRequest, job_id) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    job = access_job(request, job_id)
    return render(request, "htmx/job_status.html", {"job": job}, status=STOP_POLLING if job.is_finished else 200)


@require_GET
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers."""
    return HttpResponse("ok\n", content_type="text/plain")


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database and Redis answer."""
    db, cache = health.database_state(), health.redis_state()
    ready = db.ok and cache.ok
    body = {"ready": ready, "database": "ok" if db.ok else "unreachable", "redis": "ok" if cache.ok else "unreachable"}
    return JsonResponse(body, status=200 if ready else 503)
