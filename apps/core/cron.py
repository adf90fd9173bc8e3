"""Cron schedules shared by the domains that run things on a timetable (inspection schedules, pipeline schedules):
parse five cron fields with a sentence when they do not, and keep one django-celery-beat entry per schedule."""

from __future__ import annotations

import json

from celery.schedules import crontab
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D

MAX_LENGTH = 100


class BadCron(Failure):
    """The schedule does not parse; the sentence says what a schedule looks like."""


def parse(text: str) -> dict[str, str]:
    """Five cron fields (minute hour day-of-month month day-of-week) as CrontabSchedule's fields; BadCron with a
    sentence when they do not parse."""
    fields = (text or "").split()
    if len(text or "") > MAX_LENGTH or len(fields) != 5:
        raise BadCron(D(N_("A schedule is five fields: minute hour day-of-month month day-of-week, e.g. 0 7 * * *.")))
    minute, hour, dom, month, dow = fields
    try:
        crontab(minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow)
    except (ValueError, TypeError, KeyError):
        raise BadCron(D(N_("The schedule %(cron)s does not parse as cron."), cron=text)) from None
    return {"minute": minute, "hour": hour, "day_of_month": dom, "month_of_year": month, "day_of_week": dow}


def sync_entry(
    *, entry: PeriodicTask | None, name: str, task: str, args: list, cron: str, tz: str, enabled: bool, description: str
) -> PeriodicTask:
    """The beat entry ``entry`` (or a new one called ``name``) set to run ``task(*args)`` on ``cron`` in ``tz``."""
    fields = parse(cron)
    schedule, _created = CrontabSchedule.objects.get_or_create(**fields, timezone=tz)
    if entry is None:
        entry = PeriodicTask.objects.filter(name=name).first() or PeriodicTask(name=name)
    entry.task = task
    entry.crontab = schedule
    entry.interval = None
    entry.args = json.dumps(args)
    entry.enabled = enabled
    entry.description = description[:200]
    entry.save()
    return entry
