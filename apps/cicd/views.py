"""Pipeline pages: the list (with each pipeline's recent runs), a pipeline (its settings, triggers, upload, history
and trends), a run (its stages live, logs, artefacts), a run's scan report, and the push webhook. Views authorize
(access.py), validate a form, call a service, render. Registries, base images, policies, exceptions and the
vulnerability database are catalogue/."""

from __future__ import annotations

import statistics

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh

from apps.accounts.capabilities import CICD_EDIT, CICD_EXCEPTIONS, CICD_RUN, CICD_VIEW
from apps.cicd import access, services, storage
from apps.cicd.forms import PipelineForm, RunForm, UploadForm
from apps.cicd.models import SEVERITY_ORDER, Artifact, Pipeline, Run, Severity, Stage
from apps.core import audit
from apps.core.deferred import Failure
from apps.core.deferred import render as render_deferred
from apps.core.htmx import render

RUNS_SHOWN = 50
RECENT = 10
TREND = 30


def _viewer(user) -> None:
    if not access.holds(user, CICD_VIEW):
        raise Http404


def _recent_runs(pipeline_ids: list[int]) -> dict[int, list[Run]]:
    """The last RECENT runs of each pipeline, in one query."""
    if not pipeline_ids:
        return {}
    rows = (
        Run.objects.filter(pipeline_id__in=pipeline_ids)
        .annotate(row=Window(RowNumber(), partition_by=[F("pipeline_id")], order_by=F("number").desc()))
        .filter(row__lte=RECENT)
        .order_by("pipeline_id", "-number")
    )
    found: dict[int, list[Run]] = {}
    for run in rows:
        found.setdefault(run.pipeline_id, []).append(run)
    return found


@login_required
def home(request):
    _viewer(request.user)
    pipelines = list(access.pipelines(request.user).order_by("project__name", "name"))
    recent = _recent_runs([p.pk for p in pipelines])
    rows = []
    for pipeline in pipelines:
        runs = recent.get(pipeline.pk, [])
        finished = [r for r in runs if r.is_finished]
        rows.append(
            {
                "pipeline": pipeline,
                "last": runs[0] if runs else None,
                "dots": list(reversed(runs)),
                "success": round(100 * sum(r.status == Run.Status.SUCCEEDED for r in finished) / len(finished))
                if finished
                else None,
            }
        )
    context = {
        "rows": rows,
        "may_create": access.holds(request.user, CICD_EDIT) and access.projects(request.user, CICD_EDIT).exists(),
        "active": Run.objects.filter(status__in=Run.ACTIVE, pk__in=access.runs(request.user).values("pk")).count(),
    }
    return render(request, "cicd/home.html", context)


def _save_form(request, pipeline: Pipeline | None):
    form = PipelineForm(request.POST or None, user=request.user, pipeline=pipeline)
    error = ""
    if request.method == "POST" and form.is_valid():
        target = form.apply(pipeline or Pipeline())
        try:
            saved = services.save_pipeline(actor=request.user, pipeline=target, git_token=form.token(), request=request)
        except Failure as exc:
            error = str(exc)
        else:
            messages.success(request, _("Pipeline %(name)s saved.") % {"name": saved.name})
            return redirect("cicd:pipeline_detail", saved.pk)
    return render(request, "cicd/pipeline_form.html", {"form": form, "pipeline": pipeline, "error": error})


@login_required
def pipeline_create(request):
    if not access.holds(request.user, CICD_EDIT):
        raise Http404
    return _save_form(request, None)


@login_required
def pipeline_edit(request, pk: int):
    pipeline = access.pipeline(request.user, pk, CICD_EDIT)
    return _save_form(request, pipeline)


@login_required
@require_POST
def pipeline_delete(request, pk: int):
    pipeline = access.pipeline(request.user, pk, CICD_EDIT)
    try:
        services.delete_pipeline(actor=request.user, pipeline=pipeline, request=request)
    except Failure as exc:
        messages.error(request, str(exc))
        return redirect("cicd:pipeline_detail", pipeline.pk)
    messages.success(request, _("Pipeline %(name)s deleted.") % {"name": pipeline.name})
    return redirect("cicd:home")


def _trend(runs: list[Run]) -> dict:
    """Durations and outcomes of the last runs, and each stage's median time over the successful ones."""
    finished = [r for r in runs if r.is_finished and r.duration is not None]
    longest = max((r.duration.total_seconds() for r in finished), default=0) or 1
    bars = [
        {
            "run": r,
            "seconds": round(r.duration.total_seconds()),
            "height": max(4, round(100 * r.duration.total_seconds() / longest)),
        }
        for r in reversed(finished)
    ]
    passed = [r for r in finished if r.status == Run.Status.SUCCEEDED]
    stages: dict[str, list[float]] = {}
    for stage in Stage.objects.filter(run__in=passed, finished_at__isnull=False, started_at__isnull=False):
        stages.setdefault(stage.key, []).append((stage.finished_at - stage.started_at).total_seconds())
    medians = [
        {"key": key, "label": Stage.Key(key).label, "seconds": round(statistics.median(stages[key]), 1)}
        for key in Stage.ORDER
        if stages.get(key)
    ]
    return {
        "bars": bars,
        "success": round(100 * len(passed) / len(finished)) if finished else None,
        "median": round(statistics.median([r.duration.total_seconds() for r in passed]), 1) if passed else None,
        "stages": medians,
    }


@login_required
def pipeline_detail(request, pk: int):
    pipeline = access.pipeline(request.user, pk)
    runs = list(pipeline.runs.select_related("actor", "upload").order_by("-number")[:RUNS_SHOWN])
    may_run = access.may(request.user, CICD_RUN, pipeline)
    may_edit = access.may(request.user, CICD_EDIT, pipeline)
    context = {
        "pipeline": pipeline,
        "runs": runs,
        "trend": _trend(runs[:TREND]),
        "may_run": may_run,
        "may_edit": may_edit,
        "uploads": list(pipeline.uploads.select_related("uploaded_by")[:5]),
        "upload_form": UploadForm() if may_run and pipeline.kind == Pipeline.Kind.JAR else None,
        "run_form": RunForm() if may_run and pipeline.kind == Pipeline.Kind.REPOSITORY else None,
        "webhook_url": request.build_absolute_uri(reverse("cicd:webhook", args=[pipeline.pk])),
        "new_secret": request.session.pop(f"cicd-webhook-secret-{pipeline.pk}", "") if may_edit else "",
        "policy": services.policy_of(pipeline.project),
    }
    return render(request, "cicd/pipeline_detail.html", context)


@login_required
@require_POST
def pipeline_upload(request, pk: int):
    pipeline = access.pipeline(request.user, pk, CICD_RUN)
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, _("Choose a jar or war to upload."))
        return redirect("cicd:pipeline_detail", pipeline.pk)
    archive = form.cleaned_data["archive"]
    try:
        upload = services.add_upload(
            actor=request.user, pipeline=pipeline, filename=archive.name, chunks=archive.chunks(), request=request
        )
        run = services.start_run(
            actor=request.user, pipeline=pipeline, trigger=Run.Trigger.UPLOAD, upload=upload, request=request
        )
    except Failure as exc:
        messages.error(request, str(exc))
        return redirect("cicd:pipeline_detail", pipeline.pk)
    return redirect("cicd:run_detail", run.pk)


@login_required
@require_POST
def pipeline_run(request, pk: int):
    pipeline = access.pipeline(request.user, pk, CICD_RUN)
    form = RunForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("commit", [])))
        return redirect("cicd:pipeline_detail", pipeline.pk)
    try:
        run = services.start_run(
            actor=request.user, pipeline=pipeline, commit=form.cleaned_data["commit"], request=request
        )
    except Failure as exc:
        messages.error(request, str(exc))
        return redirect("cicd:pipeline_detail", pipeline.pk)
    return redirect("cicd:run_detail", run.pk)


@login_required
@require_POST
def pipeline_webhook_secret(request, pk: int):
    pipeline = access.pipeline(request.user, pk, CICD_EDIT)
    try:
        secret = services.rotate_webhook_secret(actor=request.user, pipeline=pipeline, request=request)
    except Failure as exc:
        messages.error(request, str(exc))
    else:
        # Shown once, on the next page only.
        request.session[f"cicd-webhook-secret-{pipeline.pk}"] = secret
    return redirect("cicd:pipeline_detail", pipeline.pk)


# Runs --------------------------------------------------------------------------------------------------------


def _run_context(request, run: Run) -> dict:
    stages = list(run.stages.order_by("position"))
    return {
        "run": run,
        "pipeline": run.pipeline,
        "stages": stages,
        "artifacts": {a.kind: a for a in run.artifacts.all()},
        "may_run": access.may(request.user, CICD_RUN, run.pipeline),
        "may_except": access.may(request.user, CICD_EXCEPTIONS, run.pipeline),
        "active": not run.is_finished,
    }


@login_required
def run_detail(request, pk: int):
    run = access.run(request.user, pk)
    return render(request, "cicd/run_detail.html", _run_context(request, run))


@login_required
def run_live(request, pk: int):
    """The stages while the run works (polled every 2 s); once it has ended, the page reloads whole."""
    run = access.run(request.user, pk)
    if run.is_finished and request.GET.get("was") == "active":
        return HttpResponseClientRefresh()
    return render(request, "cicd/run_detail.html", _run_context(request, run), partial="live")


@login_required
@require_POST
def run_cancel(request, pk: int):
    run = access.run(request.user, pk, CICD_RUN)
    try:
        messages.success(request, render_deferred(services.cancel_run(actor=request.user, run=run, request=request)))
    except Failure as exc:
        messages.error(request, str(exc))
    return redirect("cicd:run_detail", run.pk)


@login_required
@require_POST
def run_rerun(request, pk: int):
    run = access.run(request.user, pk, CICD_RUN)
    try:
        new = services.rerun(actor=request.user, run=run, request=request)
    except Failure as exc:
        messages.error(request, str(exc))
        return redirect("cicd:run_detail", run.pk)
    return redirect("cicd:run_detail", new.pk)


@login_required
def run_scan(request, pk: int):
    run = access.run(request.user, pk)
    findings = list(run.findings.select_related("exception"))
    order = {s: n for n, s in enumerate(SEVERITY_ORDER)}
    findings.sort(key=lambda f: (not f.blocking, order.get(f.severity, 9), -(f.score or 0), f.package))
    counts = [(s, Severity(s).label, sum(1 for f in findings if f.severity == s)) for s in SEVERITY_ORDER]
    context = {
        **_run_context(request, run),
        "findings": findings,
        "counts": counts,
        "scan": run.stages.filter(key=Stage.Key.SCAN).first(),
        "exceptions_url": reverse("cicd:exception_create", args=[run.pipeline.project_id]),
    }
    return render(request, "cicd/run_scan.html", context)


DOWNLOADS = {"scan": (Artifact.Kind.SCAN, "application/json"), "sbom": (Artifact.Kind.SBOM, "application/json")}


@login_required
def run_artifact(request, pk: int, kind: str):
    run = access.run(request.user, pk)
    if kind not in DOWNLOADS:
        raise Http404
    artifact = run.artifacts.filter(kind=DOWNLOADS[kind][0], removed_at__isnull=True).exclude(path="").first()
    if artifact is None:
        raise Http404
    path = storage.resolve(artifact.path)
    if not path.exists():
        raise Http404
    audit.record(
        actor=request.user,
        action="cicd.artifact.download",
        cluster=run.pipeline.project.cluster.name,
        namespace=run.pipeline.namespace,
        kind="Pipeline",
        name=run.pipeline.name,
        detail={"run": run.number, "artifact": kind, "sha256": artifact.sha256},
        request=request,
    )
    filename = f"{run.pipeline.name}-{run.number}-{artifact.name}"
    return FileResponse(path.open("rb"), as_attachment=True, filename=filename, content_type=DOWNLOADS[kind][1])


# The push webhook ----------------------------------------------------------------------------------------------


SIGNATURE_HEADERS = (
    "HTTP_X_HUB_SIGNATURE_256",
    "HTTP_X_GITEA_SIGNATURE",
    "HTTP_X_GOGS_SIGNATURE",
    "HTTP_X_KUBEMATE_SIGNATURE",
)
EVENT_HEADERS = ("HTTP_X_GITHUB_EVENT", "HTTP_X_GITEA_EVENT", "HTTP_X_GITLAB_EVENT", "HTTP_X_GOGS_EVENT")


@csrf_exempt
@require_POST
def webhook(request, pk: int):
    """A git server's push webhook: signed with the pipeline's secret (HMAC-SHA256 of the body), never a session."""
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > services.WEBHOOK_MAX_BODY:
        return JsonResponse({"error": _("The delivery is too large.")}, status=413)
    body = request.read(services.WEBHOOK_MAX_BODY + 1)
    signature = next((request.META[h] for h in SIGNATURE_HEADERS if request.META.get(h)), "")
    event = next((request.META[h] for h in EVENT_HEADERS if request.META.get(h)), "push")
    try:
        run = services.receive_webhook(pipeline_id=pk, body=body, signature=signature, event=event)
    except services.WebhookRefused as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    return JsonResponse(
        {"run": run.number, "url": request.build_absolute_uri(reverse("cicd:run_detail", args=[run.pk]))}, status=201
    )
