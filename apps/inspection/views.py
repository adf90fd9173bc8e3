"""Inspection pages: the home (runs, run now), a run's progress and report, its PDF; templates; schedules; the
host agents and databases inspected; the managers' weekly reports. Views authorize (access.py), validate a form,
call a service, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRefresh

from apps.accounts.capabilities import INSPECTION_SCHEDULE, INSPECTION_VIEW
from apps.core import audit
from apps.core.deferred import Failure
from apps.core.htmx import render
from apps.inspection import access, agents, databases, services
from apps.inspection.checks.context import THRESHOLDS
from apps.inspection.forms import AgentForm, DatabaseForm, RunForm, ScheduleForm, TemplateForm
from apps.inspection.models import DatabaseTarget, HostAgent, Run, Template
from apps.inspection.reports import build, pdf, weekly
from apps.inspection.runner import expand

RUNS_SHOWN = 50


def _viewer(user) -> None:
    if not access.holds(user, INSPECTION_VIEW):
        raise Http404


@login_required
def inspection_home(request):
    _viewer(request.user)
    runs = list(access.runs(request.user).prefetch_related("clusters").order_by("-created_at")[:RUNS_SHOWN])
    whole = access.whole_runs(request.user, runs)
    form = RunForm(user=request.user) if access.may_run(request.user) else None
    context = {
        "runs": runs,
        "whole": whole,
        "form": form,
        "may_schedule": access.may_schedule(request.user),
        "may_targets": access.may_manage_targets(request.user),
    }
    return render(request, "inspection/home.html", context)


@login_required
@require_POST
def run_start(request):
    if not access.may_run(request.user):
        raise Http404
    form = RunForm(request.POST, user=request.user)
    if not form.is_valid():
        messages.error(request, _("Pick a template."))
        return redirect("inspection:home")
    try:
        run = services.start_run(
            actor=request.user,
            template=form.cleaned_data["template"],
            clusters=list(form.cleaned_data["clusters"]) or None,
            request=request,
        )
    except Failure as exc:
        messages.error(request, str(exc))
        return redirect("inspection:home")
    return redirect("inspection:run_detail", run.pk)


@login_required
def run_detail(request, pk: int):
    run = access.run(request.user, pk)
    if run.status in (Run.Status.PENDING, Run.Status.RUNNING):
        return render(request, "inspection/run_detail.html", {"run": run, "running": True})
    report = build.build_report(run, request.user)
    return render(request, "inspection/run_detail.html", {"run": run, "report": report, "running": False})


@login_required
def run_status(request, pk: int):
    """The progress while the run works; once it has ended, the page reloads into the report."""
    run = access.run(request.user, pk)
    if run.status not in (Run.Status.PENDING, Run.Status.RUNNING):
        return HttpResponseClientRefresh()
    return render(request, "inspection/run_detail.html", {"run": run, "running": True}, partial="progress")


@login_required
def run_pdf(request, pk: int):
    run = access.run(request.user, pk)
    if run.status != Run.Status.FINISHED:
        raise Http404
    language = translation.get_language()
    report = build.build_report(run, request.user, limit=pdf.PDF_FINDINGS)
    try:
        data = pdf.render_pdf(report, language)
    except pdf.PdfUnavailable as exc:
        messages.error(request, str(exc))
        return redirect("inspection:run_detail", run.pk)
    audit.record(
        actor=request.user,
        action="inspection.report.download",
        kind="InspectionRun",
        name=str(run.pk),
        detail={"template": run.template.slug, "language": language},
        request=request,
    )
    response = HttpResponse(data, content_type="application/pdf")
    day = (run.finished_at or run.created_at).strftime("%Y-%m-%d")
    response["Content-Disposition"] = f'attachment; filename="inspection-{run.template.slug}-{day}.pdf"'
    return response


# Templates ---------------------------------------------------------------------------------------------------


@login_required
def template_list(request):
    _viewer(request.user)
    rows = [(t, len(expand(t.checks))) for t in access.templates(request.user).prefetch_related("clusters")]
    return render(
        request,
        "inspection/template_list.html",
        {"rows": rows, "may_schedule": access.may_schedule(request.user), "may_run": access.may_run(request.user)},
    )


def _template_form(request, template: Template | None):
    if not access.may_schedule(request.user):
        raise Http404
    initial = {}
    if template is not None:
        initial = {
            "name": template.name,
            "description": template.description,
            "checks": list(expand(template.checks)),
            "clusters": list(template.clusters.all()),
            "thresholds": TemplateForm.thresholds_text(template.thresholds),
        }
        initial["checks"] = [c.id for c in expand(template.checks)]
    form = TemplateForm(request.POST or None, user=request.user, initial=initial)
    error = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            saved = services.save_template(
                actor=request.user,
                name=data["name"],
                description=data["description"],
                checks=data["checks"],
                clusters=list(data["clusters"]),
                thresholds=data["thresholds"],
                template=template,
                request=request,
            )
        except Failure as exc:
            error = str(exc)
        else:
            messages.success(request, _("Template %(name)s was saved.") % {"name": saved.name})
            return redirect("inspection:template_list")
    return render(
        request,
        "inspection/template_form.html",
        {"form": form, "template": template, "error": error, "defaults": sorted(THRESHOLDS.items())},
        status=400 if error else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def template_create(request):
    return _template_form(request, None)


@login_required
@require_http_methods(["GET", "POST"])
def template_edit(request, pk: int):
    template = access.template(request.user, pk, INSPECTION_SCHEDULE)
    if template.builtin:
        raise Http404
    return _template_form(request, template)


@login_required
@require_POST
def template_copy(request, pk: int):
    template = access.template(request.user, pk, INSPECTION_SCHEDULE)
    try:
        copy = services.copy_template(actor=request.user, template=template, request=request)
    except Failure as exc:
        messages.error(request, str(exc))
        return redirect("inspection:template_list")
    return redirect("inspection:template_edit", copy.pk)


@login_required
@require_POST
def template_delete(request, pk: int):
    template = access.template(request.user, pk, INSPECTION_SCHEDULE)
    try:
        services.delete_template(actor=request.user, template=template, request=request)
    except Failure as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Template %(name)s was deleted.") % {"name": template.name})
    return redirect("inspection:template_list")


# Schedules ---------------------------------------------------------------------------------------------------


@login_required
def schedule_list(request):
    _viewer(request.user)
    schedules = list(access.schedules(request.user).prefetch_related("clusters"))
    return render(
        request,
        "inspection/schedule_list.html",
        {"schedules": schedules, "may_schedule": access.may_schedule(request.user)},
    )


def _schedule_form(request, schedule):
    if not access.may_schedule(request.user):
        raise Http404
    initial = {"language": translation.get_language()}
    if schedule is not None:
        initial = {
            "name": schedule.name,
            "kind": schedule.kind,
            "template": schedule.template_id,
            "clusters": list(schedule.clusters.all()),
            "cron": schedule.cron,
            "timezone": schedule.timezone,
            "enabled": schedule.enabled,
            "recipients": "\n".join(schedule.recipients),
            "language": schedule.language,
        }
    form = ScheduleForm(request.POST or None, user=request.user, initial=initial)
    error = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            saved = services.save_schedule(
                actor=request.user,
                name=data["name"],
                kind=data["kind"],
                template=data["template"],
                clusters=list(data["clusters"]),
                cron=data["cron"],
                tz=data["timezone"],
                enabled=data["enabled"],
                recipients=data["recipients"],
                language=data["language"],
                schedule=schedule,
                request=request,
            )
        except Failure as exc:
            error = str(exc)
        else:
            messages.success(request, _("Schedule %(name)s was saved.") % {"name": saved.name})
            return redirect("inspection:schedule_list")
    return render(
        request,
        "inspection/schedule_form.html",
        {"form": form, "schedule": schedule, "error": error},
        status=400 if error else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def schedule_create(request):
    return _schedule_form(request, None)


@login_required
@require_http_methods(["GET", "POST"])
def schedule_edit(request, pk: int):
    return _schedule_form(request, access.schedule(request.user, pk))


@login_required
@require_POST
def schedule_delete(request, pk: int):
    schedule = access.schedule(request.user, pk)
    services.delete_schedule(actor=request.user, schedule=schedule, request=request)
    messages.success(request, _("Schedule %(name)s was deleted.") % {"name": schedule.name})
    return redirect("inspection:schedule_list")


@login_required
@require_POST
def schedule_run(request, pk: int):
    """Run a schedule now, as it would run from beat (its template, clusters and recipients) but as the person."""
    schedule = access.schedule(request.user, pk)
    try:
        if schedule.kind == schedule.Kind.WEEKLY:
            report = services.make_weekly(schedule=schedule, actor=request.user, request=request)
            return redirect("inspection:weekly_detail", report.pk)
        run = services.start_run(
            actor=request.user,
            template=schedule.template,
            clusters=list(schedule.clusters.all()) or None,
            schedule=schedule,
            request=request,
        )
    except Failure as exc:
        messages.error(request, str(exc))
        return redirect("inspection:schedule_list")
    return redirect("inspection:run_detail", run.pk)


# Host agents and databases -----------------------------------------------------------------------------------


def _targets_page(request, agent_form=None, database_form=None, error="", status=200):
    if not access.may_manage_targets(request.user):
        raise Http404
    context = {
        "agents": HostAgent.objects.select_related("cluster"),
        "databases": DatabaseTarget.objects.select_related("cluster"),
        "agent_form": agent_form or AgentForm(),
        "database_form": database_form or DatabaseForm(),
        "error": error,
    }
    return render(request, "inspection/targets.html", context, status=status)


@login_required
def target_list(request):
    return _targets_page(request)


@login_required
@require_POST
def agent_create(request):
    if not access.may_manage_targets(request.user):
        raise Http404
    form = AgentForm(request.POST)
    if not form.is_valid():
        return _targets_page(request, agent_form=form, status=400)
    data = form.cleaned_data
    try:
        agent = agents.register_agent(
            actor=request.user,
            name=data["name"],
            url=data["url"],
            token=data["token"],
            fingerprint=data["fingerprint"],
            cluster=data["cluster"],
            node_name=data["node_name"],
            request=request,
        )
    except Failure as exc:
        return _targets_page(request, agent_form=form, error=str(exc), status=400)
    messages.success(
        request,
        _("Host agent %(name)s answered and was registered; its certificate %(fingerprint)s is pinned.")
        % {"name": agent.name, "fingerprint": agent.fingerprint},
    )
    return redirect("inspection:target_list")


@login_required
@require_POST
def agent_delete(request, pk: int):
    agent = access.agent(request.user, pk)
    agents.delete_agent(actor=request.user, agent=agent, request=request)
    messages.success(request, _("Host agent %(name)s was removed.") % {"name": agent.name})
    return redirect("inspection:target_list")


@login_required
@require_POST
def database_create(request):
    if not access.may_manage_targets(request.user):
        raise Http404
    form = DatabaseForm(request.POST)
    if not form.is_valid():
        return _targets_page(request, database_form=form, status=400)
    data = form.cleaned_data
    try:
        target = databases.register_database(actor=request.user, request=request, **data)
    except Failure as exc:
        return _targets_page(request, database_form=form, error=str(exc), status=400)
    messages.success(request, _("Database %(name)s answered and was registered.") % {"name": target.name})
    return redirect("inspection:target_list")


@login_required
@require_POST
def database_delete(request, pk: int):
    target = access.database(request.user, pk)
    databases.delete_database(actor=request.user, target=target, request=request)
    messages.success(request, _("Database %(name)s was removed.") % {"name": target.name})
    return redirect("inspection:target_list")


# The managers' weekly report ---------------------------------------------------------------------------------


@login_required
def weekly_list(request):
    _viewer(request.user)
    reports = list(access.weekly_reports(request.user).prefetch_related("clusters")[:RUNS_SHOWN])
    return render(request, "inspection/weekly_list.html", {"reports": reports, "may_run": access.may_run(request.user)})


@login_required
@require_POST
def weekly_create(request):
    if not access.may_run(request.user):
        raise Http404
    report = services.make_weekly(actor=request.user, request=request)
    return redirect("inspection:weekly_detail", report.pk)


@login_required
def weekly_detail(request, pk: int):
    report = access.weekly_report(request.user, pk)
    return render(request, "inspection/weekly_detail.html", {"report": report, "body": weekly.page_context(report)})


@login_required
def weekly_pdf(request, pk: int):
    report = access.weekly_report(request.user, pk)
    language = translation.get_language()
    try:
        data = weekly.render_pdf(report, language)
    except pdf.PdfUnavailable as exc:
        messages.error(request, str(exc))
        return redirect("inspection:weekly_detail", report.pk)
    audit.record(
        actor=request.user,
        action="inspection.report.download",
        kind="WeeklyReport",
        name=str(report.pk),
        detail={"language": language},
        request=request,
    )
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="weekly-{report.period_end:%Y-%m-%d}.pdf"'
    return response
