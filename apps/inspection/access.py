"""Who may see and do what in inspection, in one place: fetch-and-authorize helpers (404 when missing or forbidden)
and the filters pages use. Findings are placed by cluster and namespace: a project user reads the findings of their
namespaces only; host and cluster-wide findings need the capability on the whole cluster; an agent or database placed
on no cluster needs it on the platform."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from apps.accounts import access
from apps.accounts.capabilities import INSPECTION_RUN, INSPECTION_SCHEDULE, INSPECTION_TARGETS, INSPECTION_VIEW
from apps.clusters.models import Cluster
from apps.inspection.models import DatabaseTarget, Finding, HostAgent, Run, Schedule, Template, WeeklyReport


def holds(user, code: str) -> bool:
    held = access.scope(user, code)
    return held.everywhere or bool(held.clusters) or any(held.namespaces.values())


def whole(user, code: str, cluster_ids) -> bool:
    """``user`` holds ``code`` on each of these clusters as a whole (none given: on the platform)."""
    held = access.scope(user, code)
    if held.everywhere:
        return True
    ids = set(cluster_ids)
    return bool(ids) and ids <= held.clusters


def clusters_for(user, code: str) -> QuerySet[Cluster]:
    """Clusters where ``user`` holds ``code`` anywhere (whole or some namespaces)."""
    held = access.scope(user, code)
    if held.everywhere:
        return Cluster.objects.all()
    return Cluster.objects.filter(pk__in=set(held.clusters) | set(held.namespaces))


def findings_q(user) -> Q:
    return access.q(user, INSPECTION_VIEW, cluster="cluster", namespace="namespace")


def visible_findings(user, run: Run) -> QuerySet[Finding]:
    return Finding.objects.filter(run=run).filter(findings_q(user))


def runs(user) -> QuerySet[Run]:
    """Runs whose clusters the user reads inspections in, or that looked at no cluster (hosts, databases) when the
    user reads them on the platform."""
    held = access.scope(user, INSPECTION_VIEW)
    base = Run.objects.select_related("template", "job", "actor", "schedule")
    if held.everywhere:
        return base
    ids = set(held.clusters) | set(held.namespaces)
    return base.filter(clusters__in=ids).distinct()


def run(user, pk: int) -> Run:
    found = runs(user).filter(pk=pk).first()
    if found is None:
        raise Http404
    return found


def sees_whole_run(user, run: Run) -> bool:
    """Whether the stored scores and counts (of everything the run found) are the user's to read."""
    return whole(user, INSPECTION_VIEW, run.clusters.values_list("pk", flat=True))


def whole_runs(user, runs) -> set[int]:
    """The runs among ``runs`` (their clusters prefetched) whose stored scores the user reads: one scope lookup for
    the list, not one per row."""
    held = access.scope(user, INSPECTION_VIEW)
    if held.everywhere:
        return {r.pk for r in runs}
    found = set()
    for r in runs:
        ids = {c.pk for c in r.clusters.all()}
        if ids and ids <= held.clusters:
            found.add(r.pk)
    return found


def may_run(user) -> bool:
    return holds(user, INSPECTION_RUN)


def may_schedule(user) -> bool:
    return holds(user, INSPECTION_SCHEDULE)


def may_manage_targets(user) -> bool:
    return access.may(user, INSPECTION_TARGETS)


def templates(user) -> QuerySet[Template]:
    return Template.objects.all() if holds(user, INSPECTION_VIEW) else Template.objects.none()


def template(user, pk: int, code: str = INSPECTION_VIEW) -> Template:
    if not holds(user, code):
        raise Http404
    found = Template.objects.filter(pk=pk).first()
    if found is None:
        raise Http404
    return found


def schedules(user) -> QuerySet[Schedule]:
    """Schedules the user may read: their own, or all when they schedule on the platform."""
    if not holds(user, INSPECTION_VIEW):
        return Schedule.objects.none()
    base = Schedule.objects.select_related("template", "owner", "periodic_task")
    if access.scope(user, INSPECTION_SCHEDULE).everywhere:
        return base
    return base.filter(owner=user)


def schedule(user, pk: int) -> Schedule:
    found = schedules(user).filter(pk=pk).first()
    if found is None or not may_schedule(user):
        raise Http404
    return found


def agent(user, pk: int) -> HostAgent:
    if not may_manage_targets(user):
        raise Http404
    found = HostAgent.objects.filter(pk=pk).first()
    if found is None:
        raise Http404
    return found


def database(user, pk: int) -> DatabaseTarget:
    if not may_manage_targets(user):
        raise Http404
    found = DatabaseTarget.objects.filter(pk=pk).first()
    if found is None:
        raise Http404
    return found


def weekly_reports(user) -> QuerySet[WeeklyReport]:
    held = access.scope(user, INSPECTION_VIEW)
    if held.everywhere:
        return WeeklyReport.objects.all()
    # The weekly report speaks of whole clusters: it is for those who read inspections on whole clusters.
    if not held.clusters:
        return WeeklyReport.objects.none()
    return (
        WeeklyReport.objects.exclude(clusters__in=Cluster.objects.exclude(pk__in=held.clusters))
        .filter(clusters__in=held.clusters)
        .distinct()
    )


def weekly_report(user, pk: int) -> WeeklyReport:
    found = weekly_reports(user).filter(pk=pk).first()
    if found is None:
        raise Http404
    return found
