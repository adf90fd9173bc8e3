"""Change windows and freezes: whether a change may be made now, and when it may be next.

``refusal(cluster, namespace, action)`` is what the gate (services.py) and the automatic canary steps ask (through
apps/core/gates.py): None when the change may go on, else a deferred sentence naming why and when it may:

- a freeze covering the project and the cluster, now: nothing changes, canary steps included;
- windows covering them, none open now: the gated actions (``ACTIONS``) wait for the next one.

Windows are weekly, in their own time zone; the next opening is looked for over the coming fortnight.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta

from django.utils import timezone

from apps.clusters.models import Cluster
from apps.compliance.models import ChangeWindow
from apps.core.deferred import N_
from apps.core.deferred import text as D

LOOK_AHEAD_DAYS = 14


def covering(rules, cluster, scope: dict) -> list:
    """The policies or windows of ``rules`` (each: its project, its cluster labels) that cover a change made in
    ``cluster`` (None: the whole platform, every cluster) reaching ``scope`` (gates.Change.scope: its namespaces,
    a project named outright, or every project). A rule without a project covers every change on a cluster it
    matches; a rule of a project covers the changes that reach that project."""
    rules = list(rules)
    everywhere = list(Cluster.objects.all()) if cluster is None and rules else []
    return [rule for rule in rules if _covers(rule, cluster, scope, everywhere)]


def _covers(rule, cluster, scope: dict, everywhere: list) -> bool:
    if rule.project_id is None:
        if cluster is not None:
            return rule.matches_cluster(cluster)
        return any(rule.matches_cluster(c) for c in everywhere)
    project = rule.project
    if cluster is not None and project.cluster_id != cluster.pk:
        return False
    if not rule.matches_cluster(project.cluster):
        return False
    if scope.get("every_project"):
        return True
    return project.pk == scope.get("project") or bool(set(scope.get("namespaces") or []) & set(project.namespaces))


def _scoped(cluster, scope: dict) -> tuple[list, list]:
    """The enabled windows and freezes covering the change, in one query."""
    rows = covering(ChangeWindow.objects.filter(enabled=True).select_related("project__cluster"), cluster, scope)
    return [r for r in rows if r.kind == ChangeWindow.Kind.WINDOW], [
        r for r in rows if r.kind == ChangeWindow.Kind.FREEZE
    ]


def _zone(window: ChangeWindow):
    try:
        return zoneinfo.ZoneInfo(window.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _spans(window: ChangeWindow, around: datetime):
    """The window's open periods (aware datetimes) on the days from one before ``around`` to the look-ahead."""
    if window.start_time is None or window.end_time is None or not window.weekdays:
        return
    zone = _zone(window)
    local = around.astimezone(zone).date()
    for offset in range(-1, LOOK_AHEAD_DAYS + 1):
        day = local + timedelta(days=offset)
        if day.weekday() not in window.weekdays:
            continue
        start = datetime.combine(day, window.start_time, tzinfo=zone)
        end = datetime.combine(day, window.end_time, tzinfo=zone)
        if end <= start:  # an overnight window: until the next morning
            end += timedelta(days=1)
        yield start, end


def is_open(windows, now: datetime) -> bool:
    return any(start <= now < end for window in windows for start, end in _spans(window, now))


def next_opening(windows, after: datetime) -> tuple[datetime, ChangeWindow] | None:
    found = [(start, window) for window in windows for start, _end in _spans(window, after) if start >= after]
    return min(found, key=lambda pair: pair[0]) if found else None


def _when(moment: datetime, window: ChangeWindow | None = None) -> str:
    zone = _zone(window) if window is not None else timezone.get_default_timezone()
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M} {zone.key}"


def refusal(
    cluster, namespace: str, action: str, now: datetime | None = None, *, gated: bool = True, scope: dict | None = None
) -> str | None:
    """Why ``action`` may not be made now in ``cluster``/``namespace`` (a deferred sentence), or None. ``gated``:
    the action is one of the approval-gated actions, which the windows restrict (a canary step only honours
    freezes). ``scope``: where else the change reaches (gates.Change.scope), when more than ``namespace``."""
    now = now or timezone.now()
    scope = scope or {"namespaces": [namespace] if namespace else []}
    windows, freezes = _scoped(cluster, scope)
    for freeze in freezes:
        if freeze.starts_at and freeze.ends_at and freeze.starts_at <= now < freeze.ends_at:
            opening = next_opening(windows, freeze.ends_at) if windows else None
            return D(
                N_("Changes are frozen until %(until)s (%(name)s%(reason)s). %(next)s"),
                until=_when(freeze.ends_at),
                name=freeze.name,
                reason=f": {freeze.reason}" if freeze.reason else "",
                next=D(N_("The next change window opens %(when)s."), when=_when(*opening)) if opening else "",
            )
    if gated and windows and not is_open(windows, now):
        opening = next_opening(windows, now)
        if opening is None:
            return D(N_("No change window is open now, and none opens in the next two weeks."))
        return D(
            N_("This change is outside the change windows. The next one, %(name)s, opens %(when)s."),
            name=opening[1].name,
            when=_when(*opening),
        )
    return None
