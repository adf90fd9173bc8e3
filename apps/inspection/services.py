"""Every change in inspection: start a run, templates, schedules (and their beat entries), the weekly report. Each
acts as a person (a schedule acts as its owner), in one transaction, with one audit event."""

from __future__ import annotations

import zoneinfo

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django_celery_beat.models import PeriodicTask

from apps.accounts.capabilities import INSPECTION_RUN, INSPECTION_SCHEDULE
from apps.core import audit
from apps.core import cron as cron_fields
from apps.core.deferred import N_, Failure, render
from apps.core.deferred import text as D
from apps.core.jobs import start_job
from apps.inspection import access, tasks
from apps.inspection.models import Run, Schedule, Template, WeeklyReport
from apps.inspection.reports import weekly
from apps.inspection.runner import expand

MAX_RECIPIENTS = 50


class Refused(Failure):
    """The change is refused; the message says why and what to do."""


# Runs --------------------------------------------------------------------------------------------------------


def start_run(*, actor, template: Template, clusters=None, schedule: Schedule | None = None, request=None) -> Run:
    """Queue an inspection of ``template`` as ``actor`` over ``clusters`` (default: the template's, or every cluster
    the actor may inspect), as a Job with progress. Refused when the actor may inspect none of them."""
    allowed = access.clusters_for(actor, INSPECTION_RUN)
    if not access.holds(actor, INSPECTION_RUN):
        raise Refused(D(N_("You may not run inspections.")))
    chosen = list(clusters) if clusters is not None else list(template.clusters.all())
    if chosen:
        permitted = set(allowed.filter(pk__in=[c.pk for c in chosen]).values_list("pk", flat=True))
        refused = [c.name for c in chosen if c.pk not in permitted]
        if refused:
            raise Refused(D(N_("You may not inspect cluster %(cluster)s."), cluster=", ".join(sorted(refused))))
    else:
        chosen = list(allowed)
    if not expand(template.checks):
        raise Refused(D(N_("Template %(template)s has no checks to run."), template=template.name))
    with transaction.atomic():
        run = Run.objects.create(template=template, schedule=schedule, actor=actor)
        run.clusters.set(chosen)
        job = start_job(
            task=tasks.run_inspection,
            title=D(N_("Inspection: %(template)s"), template=template.name),
            actor=actor,
            target=f"inspection/{template.slug}",
            args=(run.pk,),
        )
        Run.objects.filter(pk=run.pk).update(job=job)
        run.job = job
        audit.record(
            actor=actor,
            action="inspection.run.start",
            kind="InspectionRun",
            name=str(run.pk),
            detail={
                "template": template.slug,
                "clusters": sorted(c.name for c in chosen),
                "schedule": schedule.name if schedule else "",
            },
            request=request,
        )
    return run


def run_scheduled(schedule_id: int) -> Run | None:
    """What beat starts: the schedule's template as its owner. A schedule whose owner may no longer run
    inspections is refused, in the audit log, rather than run with rights nobody holds."""
    schedule = Schedule.objects.select_related("template", "owner").filter(pk=schedule_id, enabled=True).first()
    if schedule is None:
        return None
    Schedule.objects.filter(pk=schedule.pk).update(last_run_at=timezone.now())
    owner = schedule.owner
    if schedule.kind == Schedule.Kind.WEEKLY:
        return make_weekly(schedule=schedule)
    try:
        clusters = list(schedule.clusters.all()) or None
        return start_run(actor=owner, template=schedule.template, clusters=clusters, schedule=schedule)
    except Refused as exc:
        audit.record(
            actor=owner,
            action="inspection.run.refused",
            result=audit.AuditEvent.Result.DENIED,
            kind="InspectionSchedule",
            name=schedule.name,
            detail={"reason": str(exc)},
        )
        return None


# Templates ---------------------------------------------------------------------------------------------------


def _unique_slug(name: str, exclude: int | None = None) -> str:
    base = slugify(name)[:50] or "template"
    slug, n = base, 2
    while Template.objects.filter(slug=slug).exclude(pk=exclude).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def save_template(
    *,
    actor,
    name: str,
    description: str,
    checks: list[str],
    clusters,
    thresholds: dict,
    template: Template | None = None,
    request=None,
) -> Template:
    if not access.holds(actor, INSPECTION_SCHEDULE):
        raise Refused(D(N_("You may not edit inspection templates.")))
    if template is not None and template.builtin:
        raise Refused(D(N_("Built-in templates cannot be changed: copy one and change the copy.")))
    if not expand(checks):
        raise Refused(D(N_("Pick at least one check.")))
    creating = template is None
    with transaction.atomic():
        if creating:
            template = Template(slug=_unique_slug(name), created_by=actor)
        template.name, template.description = name, description
        template.checks, template.thresholds = list(checks), dict(thresholds)
        template.save()
        template.clusters.set(clusters)
        audit.record(
            actor=actor,
            action="inspection.template.create" if creating else "inspection.template.update",
            kind="InspectionTemplate",
            name=template.slug,
            detail={"checks": len(expand(checks)), "clusters": sorted(c.name for c in clusters)},
            request=request,
        )
    return template


def copy_template(*, actor, template: Template, request=None) -> Template:
    return save_template(
        actor=actor,
        name=render(D(N_("Copy of %(template)s"), template=template.name))[:100],
        description=template.description,
        checks=list(template.checks),
        clusters=list(template.clusters.all()),
        thresholds=dict(template.thresholds),
        request=request,
    )


def delete_template(*, actor, template: Template, request=None) -> None:
    if not access.holds(actor, INSPECTION_SCHEDULE):
        raise Refused(D(N_("You may not edit inspection templates.")))
    if template.builtin:
        raise Refused(D(N_("Built-in templates cannot be deleted.")))
    if template.runs.exists():
        raise Refused(D(N_("Template %(template)s has runs: their reports keep it."), template=template.name))
    with transaction.atomic():
        for schedule in template.schedules.all():
            _drop_beat(schedule)
        audit.record(
            actor=actor,
            action="inspection.template.delete",
            kind="InspectionTemplate",
            name=template.slug,
            request=request,
        )
        template.delete()


# Schedules ---------------------------------------------------------------------------------------------------


def parse_cron(text: str) -> dict[str, str]:
    """Five cron fields as CrontabSchedule's fields (``core.cron.parse``); Refused with its sentence otherwise."""
    try:
        return cron_fields.parse(text)
    except cron_fields.BadCron as exc:
        raise Refused(exc.stored) from None


def _sync_beat(schedule: Schedule) -> None:
    """The schedule's beat entry (django-celery-beat), created or changed to match the row."""
    parse_cron(schedule.cron)
    task = cron_fields.sync_entry(
        entry=schedule.periodic_task,
        name=f"inspection schedule {schedule.pk}",
        task="inspection.run_scheduled",
        args=[schedule.pk],
        cron=schedule.cron,
        tz=schedule.timezone,
        enabled=schedule.enabled,
        description=schedule.name,
    )
    if schedule.periodic_task_id != task.pk:
        Schedule.objects.filter(pk=schedule.pk).update(periodic_task=task)
        schedule.periodic_task = task


def _drop_beat(schedule: Schedule) -> None:
    if schedule.periodic_task_id:
        PeriodicTask.objects.filter(pk=schedule.periodic_task_id).delete()


def save_schedule(
    *,
    actor,
    name: str,
    kind: str,
    template: Template | None,
    clusters,
    cron: str,
    tz: str,
    enabled: bool,
    recipients: list[str],
    language: str,
    schedule: Schedule | None = None,
    request=None,
) -> Schedule:
    if not access.holds(actor, INSPECTION_SCHEDULE):
        raise Refused(D(N_("You may not schedule inspections.")))
    parse_cron(cron)
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise Refused(D(N_("%(zone)s is not a time zone."), zone=tz)) from None
    if kind == Schedule.Kind.INSPECTION and template is None:
        raise Refused(D(N_("Pick the template the schedule runs.")))
    if len(recipients) > MAX_RECIPIENTS:
        raise Refused(D(N_("At most %(count)s recipients."), count=MAX_RECIPIENTS))
    permitted = set(access.clusters_for(actor, INSPECTION_RUN).values_list("pk", flat=True))
    refused = sorted(c.name for c in clusters if c.pk not in permitted)
    if refused:
        raise Refused(D(N_("You may not inspect cluster %(cluster)s."), cluster=", ".join(refused)))
    creating = schedule is None
    with transaction.atomic():
        if creating:
            schedule = Schedule(owner=actor)
        schedule.name, schedule.kind = name, kind
        schedule.template = template if kind == Schedule.Kind.INSPECTION else None
        schedule.cron, schedule.timezone, schedule.enabled = " ".join(cron.split()), tz, enabled
        schedule.recipients, schedule.language = sorted(set(recipients)), language
        schedule.save()
        schedule.clusters.set(clusters)
        _sync_beat(schedule)
        audit.record(
            actor=actor,
            action="inspection.schedule.create" if creating else "inspection.schedule.update",
            kind="InspectionSchedule",
            name=schedule.name,
            detail={
                "kind": kind,
                "template": template.slug if template else "",
                "cron": schedule.cron,
                "timezone": tz,
                "enabled": enabled,
                "recipients": len(schedule.recipients),
            },
            request=request,
        )
    return schedule


def delete_schedule(*, actor, schedule: Schedule, request=None) -> None:
    if not access.holds(actor, INSPECTION_SCHEDULE):
        raise Refused(D(N_("You may not schedule inspections.")))
    with transaction.atomic():
        _drop_beat(schedule)
        audit.record(
            actor=actor,
            action="inspection.schedule.delete",
            kind="InspectionSchedule",
            name=schedule.name,
            request=request,
        )
        schedule.delete()


# The managers' weekly report ---------------------------------------------------------------------------------


def make_weekly(*, schedule: Schedule | None = None, actor=None, clusters=None, request=None) -> WeeklyReport:
    """Gather the last seven days into a WeeklyReport and queue its email when a schedule has recipients."""
    actor = actor or (schedule.owner if schedule else None)
    chosen = list(clusters if clusters is not None else (schedule.clusters.all() if schedule else []))
    if not chosen:
        chosen = list(access.clusters_for(actor, INSPECTION_RUN)) if actor else []
    with transaction.atomic():
        report = weekly.make_weekly_report(schedule=schedule, actor=actor, clusters=chosen)
        audit.record(
            actor=actor,
            action="inspection.weekly.create",
            kind="WeeklyReport",
            name=str(report.pk),
            detail={"clusters": sorted(c.name for c in chosen)},
            request=request,
        )
        if schedule is not None and schedule.recipients:
            WeeklyReport.objects.filter(pk=report.pk).update(email_state=Run.Email.PENDING)
            transaction.on_commit(lambda: tasks.email_weekly.delay(report.pk))
    return report
