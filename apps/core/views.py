"""Job pages and the health endpoints."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.core import access, health, jobs
from apps.core.htmx import render, stop_polling
from apps.core.models import Job


@login_required
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = access.jobs(request.user)[:100]
    return render(request, "core/job_list.html", {"jobs": jobs})


@login_required
@require_GET
def job_detail(request: HttpRequest, job_id) -> HttpResponse:
    job = access.job(request.user, job_id)
    return render(request, "core/job_detail.html", {"job": job, "log_lines": job.log_lines.all()[:1000]})


@require_GET
@never_cache
def job_status(request: HttpRequest, job_id) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    job = access.job(request.user, job_id)
    if job.status == Job.Status.RUNNING and jobs.reap_orphaned_jobs():  # beat may be down: look here too
        job.refresh_from_db()
    if job.is_finished:
        return stop_polling(request, "htmx/job_status.html", {"job": job})
    return render(request, "htmx/job_status.html", {"job": job})


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
