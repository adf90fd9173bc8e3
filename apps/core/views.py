"""Job pages and the health endpoints."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from apps.core import access, deferred, health, job_filters, jobs
from apps.core.htmx import render, stop_polling
from apps.core.models import Job


@login_required
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    form, page = job_filters.filtered(access.jobs(request.user), request.GET)
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "jobs": page.object_list, "query": query.urlencode()}
    return render(request, "core/job_list.html", context, partial="results")


@login_required
@require_GET
def job_detail(request: HttpRequest, job_id) -> HttpResponse:
    job = access.job(request.user, job_id)
    context = {
        "job": job,
        "log_lines": job.log_lines.all()[:1000],
        "can_cancel": jobs.may_cancel(request.user, job),
        "kind_label": job_filters.kind_label(job.kind),
    }
    return render(request, "core/job_detail.html", context)


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id) -> HttpResponse:
    job = access.job(request.user, job_id)
    if not jobs.may_cancel(request.user, job) and not job.is_finished:
        raise Http404
    try:
        messages.success(request, deferred.render(jobs.cancel_job(actor=request.user, job=job, request=request)))
    except jobs.JobError as exc:
        messages.error(request, deferred.render(str(exc)))
    return redirect("core:job_detail", job.pk)


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
