"""The console's one way to show a time: ISO-like ``2026-12-03 06:52`` (``when``) or with seconds (``when_s``, where
seconds matter: logs, audit, job steps), in the reader's time zone (activated per request from their setting), with
the relative age beside it ("5 minutes ago"), and the full time with its zone in the tooltip. ``age_of`` is the short
age of list columns ("5m"), with the same tooltip."""

from __future__ import annotations

from datetime import UTC, datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince
from django.utils.translation import gettext as _

register = template.Library()

MINUTES = "%Y-%m-%d %H:%M"
SECONDS = "%Y-%m-%d %H:%M:%S"


def _local(value) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return timezone.localtime(value)


def stamp(value, *, seconds: bool = False) -> str:
    """The ISO-like text alone, in the active zone ("" for no time)."""
    local = _local(value)
    return local.strftime(SECONDS if seconds else MINUTES) if local else ""


def _full(local: datetime) -> str:
    return f"{local.strftime(SECONDS)} {local.tzname()} ({timezone.get_current_timezone_name()})"


def relative(value, now: datetime | None = None) -> str:
    """ "5 minutes ago" / "in 3 hours" / "just now", translated."""
    local = _local(value)
    if local is None:
        return ""
    now = now or timezone.now()
    delta = (now - local).total_seconds()
    if abs(delta) < 60:
        return _("just now")
    if delta > 0:
        return _("%(age)s ago") % {"age": timesince(local, now, depth=1)}
    return _("in %(age)s") % {"age": timesince(now, local, depth=1)}


def _render(value, seconds: bool, with_age: bool):
    local = _local(value)
    if local is None:
        return ""
    text = local.strftime(SECONDS if seconds else MINUTES)
    age = relative(local)
    if with_age:
        return format_html(
            '<time datetime="{}" title="{}" class="text-nowrap">{}</time> <span class="text-secondary small '
            'text-nowrap" data-age>{}</span>',
            local.isoformat(),
            _full(local),
            text,
            age,
        )
    return format_html(
        '<time datetime="{}" title="{} · {}" class="text-nowrap">{}</time>', local.isoformat(), _full(local), age, text
    )


@register.filter
def when(value):
    """``2026-12-03 06:52 5 minutes ago``"""
    return _render(value, False, True)


@register.filter
def when_s(value):
    """``2026-12-03 06:52:13 5 minutes ago``"""
    return _render(value, True, True)


@register.filter
def when_plain(value):
    """``2026-12-03 06:52:13`` with the age in the tooltip (dense tables and step lists)."""
    return _render(value, True, False)


@register.filter
def age_title(value) -> str:
    """The tooltip text for a short age column: the full time in the reader's zone."""
    local = _local(value)
    return _full(local) if local else ""
