"""The managers' weekly report: per cluster, capacity and its use, releases and rollbacks, failed jobs, alerts that
fired, and the inspection scores with their trend, over one week.

``gather_weekly`` reads everything once, when the report is made, into plain numbers and ids (WeeklyReport.data: no
sentences), so the page, the PDF and the email word the same facts in each reader's language later. What could not
be read is a state code (``not_configured``, ``unreachable``) the page words. Queries are a handful per cluster;
Prometheus is asked three range queries per cluster with a daily step (eight points a week).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.utils import timezone, translation

from apps.clusters.inventory.capacity import REQUESTS_SQL, TERMINATED_POD_STATES
from apps.clusters.models import Cluster, Resource
from apps.clusters.values import byte_count, millicores
from apps.core.models import Job
from apps.inspection.checks.base import Domain
from apps.inspection.models import Run, Template, WeeklyReport
from apps.inspection.reports import pdf
from apps.inspection.reports.build import DOMAIN_COLORS, line_chart, score_chart
from apps.observability import endpoints, prometheus
from apps.releases.models import Revision

logger = logging.getLogger(__name__)

VERSION = 1
PERIOD = timedelta(days=7)
DAY = 86400
TOP_RELEASES = 10
TOP_ALERTS = 15
TOP_JOB_KINDS = 10
MAX_RUNS = 200  # inspection runs kept per report (a template run hourly is 168 a week)
TEMPLATES_CHARTED = 3

CONTAINERS = 'container!="",container!="POD"'  # cAdvisor also reports the pod's cgroup and its pause container
# Average cores used over each day, and the average working set of each container over the day, summed (a pod that
# lived part of the day counts its average over the time it lived: an upper bound under churn).
CPU_USAGE = f"sum(rate(container_cpu_usage_seconds_total{{{CONTAINERS}}}[1d]))"
MEMORY_USAGE = f"sum(avg_over_time(container_memory_working_set_bytes{{{CONTAINERS}}}[1d]))"
ALERTS_FIRED = 'count by (alertname, severity) (max_over_time(ALERTS{{alertstate="firing"}}[{window}]))'


# Gathering -------------------------------------------------------------------------------------------------------


def _capacity(cluster: Cluster) -> dict:
    cpu = memory = nodes = ready = 0
    for allocatable, status in Resource.objects.filter(cluster=cluster, kind="Node").values_list(
        "object__status__allocatable", "status"
    ):
        allocatable = allocatable or {}
        cpu += millicores(allocatable.get("cpu") or "0")
        memory += byte_count(allocatable.get("memory") or "0")
        nodes += 1
        ready += 1 if (status or "").startswith("Ready") else 0
    cpu_requested = memory_requested = 0
    with connection.cursor() as cursor:
        cursor.execute(REQUESTS_SQL.format(namespaces=""), [cluster.pk, list(TERMINATED_POD_STATES)])
        for cpu_text, memory_text, n in cursor.fetchall():
            cpu_requested += millicores(cpu_text) * n
            memory_requested += byte_count(memory_text) * n
    return {
        "nodes": nodes,
        "nodes_ready": ready,
        "cpu_allocatable_m": cpu,
        "cpu_requested_m": cpu_requested,
        "memory_allocatable_b": memory,
        "memory_requested_b": memory_requested,
    }


def _points(answer: prometheus.Range) -> dict[int, float]:
    series = answer.series[0] if answer.series else None
    return {int(t): v for t, v in (series.points if series else []) if v == v}  # NaN != NaN


def _usage(source, start: datetime, end: datetime) -> dict:
    # Whole days counted back from the end, so the last point is the day that ends with the report.
    first = end - timedelta(seconds=DAY * max(int((end - start).total_seconds()) // DAY, 1))
    cpu = _points(prometheus.query_range(source, CPU_USAGE, first, end, DAY, max_series=1))
    memory = _points(prometheus.query_range(source, MEMORY_USAGE, first, end, DAY, max_series=1))
    days = sorted(set(cpu) | set(memory))
    return {
        "state": "ok" if days else "no_data",
        "points": [[t, cpu.get(t), memory.get(t)] for t in days],
    }


def _alerts(source, start: datetime, end: datetime) -> dict:
    window = prometheus.duration(max(int((end - start).total_seconds()), 60))
    answer = prometheus.query_range(source, ALERTS_FIRED.format(window=window), end, end, 60, max_series=500)
    rows = []
    for series in answer.series:
        values = [v for _t, v in series.points if v == v]
        if values:
            rows.append([series.labels.get("alertname", ""), series.labels.get("severity", ""), int(values[-1])])
    rows.sort(key=lambda r: (-r[2], r[0], r[1]))
    return {
        "state": "ok",
        "fired": sum(r[2] for r in rows),
        "names": len({r[0] for r in rows}),
        "top": rows[:TOP_ALERTS],
        "cut": answer.cut or len(rows) > TOP_ALERTS,
    }


def _from_prometheus(cluster: Cluster, start: datetime, end: datetime) -> tuple[dict, dict]:
    if not cluster.prometheus_url:
        return {"state": "not_configured", "points": []}, {"state": "not_configured"}
    source = endpoints.prometheus(cluster)
    try:
        usage = _usage(source, start, end)
    except prometheus.PrometheusError as exc:
        logger.warning("weekly report: usage not read", extra={"cluster": cluster.name, "error": str(exc)})
        usage = {"state": "unreachable", "points": []}
    try:
        alerts = _alerts(source, start, end)
    except prometheus.PrometheusError as exc:
        logger.warning("weekly report: alerts not read", extra={"cluster": cluster.name, "error": str(exc)})
        alerts = {"state": "unreachable"}
    return usage, alerts


def _releases(ids: list[int], start: datetime, end: datetime) -> dict[int, dict]:
    revisions = Revision.objects.filter(
        release__project__cluster_id__in=ids, created_at__gte=start, created_at__lt=end
    ).order_by()
    found: dict[int, dict] = {pk: {"deploys": 0, "rollbacks": 0, "failed": 0, "releases": 0, "top": []} for pk in ids}
    for row in revisions.values("release__project__cluster_id").annotate(
        deploys=Count("pk", filter=Q(rollback_of__isnull=True)),
        rollbacks=Count("pk", filter=Q(rollback_of__isnull=False)),
        failed=Count("pk", filter=Q(result=Revision.Result.FAILED)),
        releases=Count("release", distinct=True),
    ):
        found[row.pop("release__project__cluster_id")].update(row)
    per_release = (
        revisions.values("release__project__cluster_id", "release_id", "release__namespace", "release__name")
        .annotate(
            deploys=Count("pk", filter=Q(rollback_of__isnull=True)),
            rollbacks=Count("pk", filter=Q(rollback_of__isnull=False)),
            failed=Count("pk", filter=Q(result=Revision.Result.FAILED)),
            total=Count("pk"),
        )
        .order_by("-rollbacks", "-failed", "-total", "release__namespace", "release__name")[: TOP_RELEASES * len(ids)]
    )
    for row in per_release:
        top = found[row["release__project__cluster_id"]]["top"]
        if len(top) < TOP_RELEASES:
            top.append(
                [
                    row["release_id"],
                    row["release__namespace"],
                    row["release__name"],
                    row["deploys"],
                    row["rollbacks"],
                    row["failed"],
                ]
            )
    return found


def _failed_jobs(start: datetime, end: datetime):
    ended = Q(finished_at__gte=start, finished_at__lt=end) | Q(
        finished_at__isnull=True, created_at__gte=start, created_at__lt=end
    )
    return Job.objects.filter(status=Job.Status.FAILED).filter(ended).order_by()


def _job_counts(jobs) -> dict:
    kinds = list(jobs.values("kind").annotate(n=Count("pk")).order_by("-n", "kind").values_list("kind", "n"))
    return {"failed": sum(n for _k, n in kinds), "kinds": [[k, n] for k, n in kinds[:TOP_JOB_KINDS]]}


def _inspection(ids: list[int], start: datetime, end: datetime) -> dict[int, list]:
    rows = (
        Run.clusters.through.objects.filter(
            cluster_id__in=ids,
            run__status=Run.Status.FINISHED,
            run__finished_at__gte=start,
            run__finished_at__lt=end,
        )
        .order_by("-run__finished_at")
        .values_list("cluster_id", "run_id", "run__template_id", "run__finished_at", "run__scores")[
            : MAX_RUNS * len(ids)
        ]
    )
    found: dict[int, list] = {pk: [] for pk in ids}
    for cluster_id, pk, template_id, finished, scores in rows:
        if len(found[cluster_id]) < MAX_RUNS:
            found[cluster_id].append([pk, template_id, int(finished.timestamp()), dict(scores or {})])
    for runs in found.values():
        runs.reverse()  # oldest first: a trend reads left to right
    return found


def gather_weekly(*, clusters, start: datetime, end: datetime) -> dict:
    """Everything the weekly report says of ``clusters`` between ``start`` and ``end``, as numbers and ids."""
    clusters = list(clusters)
    ids = [c.pk for c in clusters]
    releases = _releases(ids, start, end)
    runs = _inspection(ids, start, end)
    jobs = _failed_jobs(start, end)
    gathered = []
    for cluster in clusters:
        usage, alerts = _from_prometheus(cluster, start, end)
        gathered.append(
            {
                "id": cluster.pk,
                "name": cluster.name,
                "environment": cluster.environment,
                "capacity": _capacity(cluster),
                "usage": usage,
                "alerts": alerts,
                "releases": releases[cluster.pk],
                "jobs": _job_counts(jobs.filter(target__startswith=f"cluster/{cluster.name}/")),
                "runs": runs[cluster.pk],
            }
        )
    return {
        "version": VERSION,
        "start": int(start.timestamp()),
        "end": int(end.timestamp()),
        "clusters": gathered,
        "jobs": _job_counts(jobs),
        "backups": "not_available",
    }


def make_weekly_report(*, schedule=None, actor=None, clusters=(), now: datetime | None = None) -> WeeklyReport:
    """Gather the week that ends now into a new WeeklyReport of ``clusters``."""
    end = now or timezone.now()
    start = end - PERIOD
    clusters = list(clusters)
    data = gather_weekly(clusters=clusters, start=start, end=end)
    report = WeeklyReport.objects.create(schedule=schedule, actor=actor, period_start=start, period_end=end, data=data)
    report.clusters.set(clusters)
    return report


# Wording (at read time, in the reader's language) -----------------------------------------------------------------


def _percent(part, whole) -> int | None:
    return round(100 * part / whole) if whole else None


def _when(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _day(ts: int) -> str:
    return timezone.localtime(_when(ts)).strftime("%m-%d")


def _usage_chart(usage: dict, capacity: dict):
    points = usage.get("points") or []
    cpu_total, memory_total = capacity.get("cpu_allocatable_m") or 0, capacity.get("memory_allocatable_b") or 0
    if not points or not (cpu_total or memory_total):
        return ""
    labels = [_day(t) for t, _c, _m in points]
    lines = []
    if cpu_total:
        lines.append(
            (
                translation.gettext("CPU"),
                DOMAIN_COLORS[Domain.CLUSTER],
                [None if c is None else 100 * c * 1000 / cpu_total for _t, c, _m in points],
            )
        )
    if memory_total:
        lines.append(
            (
                translation.gettext("Memory"),
                DOMAIN_COLORS[Domain.APPS],
                [None if m is None else 100 * m / memory_total for _t, _c, m in points],
            )
        )
    top = max([100.0] + [v for _n, _c, values in lines for v in values if v is not None])
    return line_chart(labels, lines, top=top, width=380, height=170, testid="usage-trend")  # half a page wide


def _score_trends(runs: list, templates: dict[int, Template]) -> list[dict]:
    by_template: dict[int, list] = {}
    for pk, template_id, ts, scores in runs:
        by_template.setdefault(template_id, []).append((pk, ts, scores))
    trends = []
    for template_id, items in sorted(by_template.items(), key=lambda kv: -len(kv[1])):
        first, last = items[0][2], items[-1][2]
        domains = [
            {
                "domain": d,
                "label": Domain(d).label,
                "score": last[d],
                "delta": (last[d] - first[d]) if d in first and len(items) > 1 else None,
            }
            for d in Domain.values
            if d in last
        ]
        trends.append(
            {
                "template": templates.get(template_id),
                "runs": len(items),
                "last_run": items[-1][0],
                "domains": domains,
                "chart": score_chart([(_when(ts), scores) for _pk, ts, scores in items], height=170)
                if len(items) > 1 and len(trends) < TEMPLATES_CHARTED
                else "",
            }
        )
    return trends


def page_context(report: WeeklyReport) -> dict:
    """What weekly/_body.html shows, worded in the active language and time zone."""
    data = report.data or {}
    template_ids = {r[1] for c in data.get("clusters", []) for r in c.get("runs", [])}
    templates = Template.objects.in_bulk(template_ids)
    clusters = []
    for c in data.get("clusters", []):
        capacity = c.get("capacity") or {}
        usage = c.get("usage") or {}
        points = usage.get("points") or []
        last = points[-1] if points else None
        clusters.append(
            {
                **c,
                "cpu_allocatable": round((capacity.get("cpu_allocatable_m") or 0) / 1000, 1),
                "cpu_requested": round((capacity.get("cpu_requested_m") or 0) / 1000, 1),
                "cpu_requested_percent": _percent(capacity.get("cpu_requested_m"), capacity.get("cpu_allocatable_m")),
                "memory_allocatable": round((capacity.get("memory_allocatable_b") or 0) / 2**30, 1),
                "memory_requested": round((capacity.get("memory_requested_b") or 0) / 2**30, 1),
                "memory_requested_percent": _percent(
                    capacity.get("memory_requested_b"), capacity.get("memory_allocatable_b")
                ),
                "cpu_used": None if not last or last[1] is None else round(last[1], 1),
                "memory_used": None if not last or last[2] is None else round(last[2] / 2**30, 1),
                "usage_chart": _usage_chart(usage, capacity),
                "trends": _score_trends(c.get("runs") or [], templates),
            }
        )
    return {
        "start": _when(data["start"]) if "start" in data else report.period_start,
        "end": _when(data["end"]) if "end" in data else report.period_end,
        "clusters": clusters,
        "jobs": data.get("jobs") or {"failed": 0, "kinds": []},
        "backups": data.get("backups", "not_available"),
    }


def summary_lines(report: WeeklyReport) -> list[str]:
    """The week in a few sentences of the active language (the email's text part)."""
    gettext, ngettext = translation.gettext, translation.ngettext
    body = page_context(report)
    lines = []
    for c in body["clusters"]:
        rel = c["releases"]
        parts = [
            ngettext("%(count)s deploy", "%(count)s deploys", rel["deploys"]) % {"count": rel["deploys"]},
            ngettext("%(count)s rollback", "%(count)s rollbacks", rel["rollbacks"]) % {"count": rel["rollbacks"]},
            ngettext("%(count)s failed job", "%(count)s failed jobs", c["jobs"]["failed"])
            % {"count": c["jobs"]["failed"]},
        ]
        if c["alerts"].get("state") == "ok":
            parts.append(
                ngettext("%(count)s alert fired", "%(count)s alerts fired", c["alerts"]["fired"])
                % {"count": c["alerts"]["fired"]}
            )
        if c["cpu_requested_percent"] is not None:
            parts.append(gettext("CPU requested %(percent)s%%") % {"percent": c["cpu_requested_percent"]})
        if c["memory_requested_percent"] is not None:
            parts.append(gettext("memory requested %(percent)s%%") % {"percent": c["memory_requested_percent"]})
        for trend in c["trends"][:1]:
            parts.append(
                gettext("inspection scores: %(scores)s")
                % {"scores": ", ".join(f"{d['label']} {d['score']}" for d in trend["domains"])}
            )
        lines.append(f"{c['name']}: " + ", ".join(parts) + ".")
    if not body["clusters"]:
        lines.append(gettext("The report covers no cluster."))
    lines.append(gettext("Backups are not part of this report yet."))
    return lines


def render_pdf(report: WeeklyReport, language: str) -> bytes:
    with translation.override(language):
        html = render_to_string("inspection/weekly/pdf.html", {"report": report, "weekly": page_context(report)})
    return pdf.write_pdf(html)


def filename(report: WeeklyReport) -> str:
    return f"weekly-{report.period_end:%Y-%m-%d}.pdf"
