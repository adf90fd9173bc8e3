"""A run's report as one person may read it: one builder for the console page and the PDF.

A person who reads inspections on every cluster of the run reads what the run stored (its scores). Someone who
reads them in some namespaces only (a project's developer) gets the report recomputed from what they may see:
findings of their namespaces (access.findings_q; cluster- and host-wide findings have no namespace and need the
whole cluster), outcomes of the clusters they read in, and a check whose findings are all hidden from them counts as
passed for them when it looked (never when it could not look). The trend is the same computation over the last
runs of the template, so a number never reveals what the findings hide.

Queries are bounded whatever the run's size: counts by aggregate, at most ``MAX_SHOWN`` findings fetched (new first,
then unchanged, then fixed; "and N more" for the rest), one query each for the outcomes, the trend's runs, their
clusters and their hidden findings.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Case, Count, IntegerField, Value, When
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.accounts import access as accounts_access
from apps.accounts.capabilities import INSPECTION_VIEW
from apps.core.deferred import render
from apps.inspection import access
from apps.inspection.catalogue import CATALOGUE
from apps.inspection.checks.base import Domain, Severity
from apps.inspection.models import Finding, Outcome, Run
from apps.inspection.runner import scores_of

MAX_SHOWN = 2000  # findings fetched and rendered per report; the counts stay exact
TREND_RUNS = 10
MAX_NOT_CHECKED = 500  # outcomes that could not look, listed (grouped by check and reason)
TARGETS_SHOWN = 10  # per not-checked group
SEVERITIES = (Severity.CRITICAL, Severity.WARNING, Severity.INFO)
RANK = {s: i for i, s in enumerate(SEVERITIES)}
CHANGES = (Finding.Change.NEW, Finding.Change.UNCHANGED, Finding.Change.FIXED)
DOMAIN_COLORS = {
    Domain.CLUSTER: "#206bc4",
    Domain.HOSTS: "#2fb344",
    Domain.APPS: "#f76707",
    Domain.DATABASES: "#ae3ec9",
}


@dataclass
class Item:
    """One finding as the report shows it."""

    pk: int
    subject: str
    message: str  # deferred sentence: rendered with ``tr``
    severity: str
    cluster: str
    namespace: str
    target: str

    @property
    def severity_label(self) -> str:
        return Severity(self.severity).label


@dataclass
class CheckBlock:
    """The findings of one check at one severity, with what the catalogue says of the check."""

    check_id: str
    severity: str
    domain: str
    title: object
    why: object
    fix: object
    items: list[Item] = field(default_factory=list)

    @property
    def severity_label(self) -> str:
        return Severity(self.severity).label


@dataclass
class Section:
    change: str
    total: int
    blocks: list[CheckBlock]
    shown: int

    @property
    def label(self) -> str:
        return Finding.Change(self.change).label

    @property
    def more(self) -> int:
        return self.total - self.shown


@dataclass
class NotChecked:
    check_id: str
    title: object
    reason: str  # deferred sentence: rendered with ``tr``
    targets: list[str]
    count: int

    @property
    def more(self) -> int:
        return self.count - len(self.targets)


@dataclass
class DomainScore:
    domain: str
    score: int
    previous: int | None

    @property
    def label(self) -> str:
        return Domain(self.domain).label

    @property
    def delta(self) -> int | None:
        return None if self.previous is None else self.score - self.previous

    @property
    def color(self) -> str:
        return DOMAIN_COLORS[self.domain]


@dataclass
class Report:
    run: Run
    whole: bool  # the reader sees everything the run found
    scores: dict[str, int]
    domains: list[DomainScore]
    trend: list[tuple[datetime, dict[str, int]]]
    sections: list[Section]
    changes: dict[str, int]  # new / unchanged / fixed, of what the reader sees
    severities: dict[str, int]  # of the findings still there (new and unchanged)
    outcomes: dict[str, int]  # passed / failed / not_checked
    not_checked: list[NotChecked]
    not_checked_total: int
    clusters: list[str]

    @property
    def section(self) -> dict[str, Section]:
        return {s.change: s for s in self.sections}

    @property
    def finding_total(self) -> int:
        return sum(self.changes.values())

    def worst_new(self, count: int = 5) -> list[tuple[CheckBlock, Item]]:
        """The first ``count`` new findings, worst first (the email's short list)."""
        found = []
        for block in self.section[Finding.Change.NEW].blocks:
            for item in block.items:
                if len(found) == count:
                    return found
                found.append((block, item))
        return found

    @property
    def trend_svg(self) -> SafeString:
        return score_chart(self.trend)

    @property
    def severity_rows(self) -> list[tuple[str, str, int]]:
        return [(s, Severity(s).label, self.severities.get(s, 0)) for s in SEVERITIES]


def _check_words(check_id: str) -> tuple[object, object, object]:
    check = CATALOGUE.get(check_id)
    if check is None:  # a check removed since the run: its id is all that is left to show
        return check_id, "", ""
    return check.title, check.why, check.fix


def _severity_order():
    return Case(
        *[When(severity=s, then=Value(rank)) for s, rank in RANK.items()],
        default=Value(len(RANK)),
        output_field=IntegerField(),
    )


ITEM_FIELDS = ("pk", "check_id", "domain", "severity", "cluster__name", "namespace", "subject", "message", "target")


def _sections(visible, changes: dict[str, int], limit: int) -> list[Section]:
    sections = []
    room = limit
    for change in CHANGES:
        rows = []
        if room > 0 and changes.get(change):
            rows = list(
                visible.filter(change=change)
                .annotate(rank=_severity_order())
                .order_by("rank", "check_id", "cluster__name", "subject", "pk")
                .values_list(*ITEM_FIELDS)[:room]
            )
        room -= len(rows)
        blocks: list[CheckBlock] = []
        for pk, check_id, domain, severity, cluster, namespace, subject, message, target in rows:
            if not blocks or blocks[-1].check_id != check_id or blocks[-1].severity != severity:
                blocks.append(CheckBlock(check_id, severity, domain, *_check_words(check_id)))
            blocks[-1].items.append(Item(pk, subject, message, severity, cluster or "", namespace, target))
        sections.append(Section(change, changes.get(change, 0), blocks, len(rows)))
    return sections


def _not_checked(outcomes) -> tuple[list[NotChecked], int]:
    rows = list(
        outcomes.filter(status=Outcome.Status.NOT_CHECKED)
        .order_by("check_id", "target")
        .values_list("check_id", "reason", "target")[:MAX_NOT_CHECKED]
    )
    groups: dict[tuple[str, str], NotChecked] = {}
    for check_id, reason, target in rows:
        group = groups.get((check_id, reason))
        if group is None:
            group = groups[(check_id, reason)] = NotChecked(check_id, _check_words(check_id)[0], reason, [], 0)
        group.count += 1
        if len(group.targets) < TARGETS_SHOWN:
            group.targets.append(target)
    return list(groups.values()), len(rows)


def _outcomes_for(user, run_ids):
    """Outcomes of these runs on the clusters where ``user`` reads inspections (all of them for the platform)."""
    held = accounts_access.scope(user, INSPECTION_VIEW)
    rows = Outcome.objects.filter(run_id__in=run_ids)
    if not held.everywhere:
        rows = rows.filter(cluster_id__in=sorted(set(held.clusters) | set(held.namespaces)))
    return rows


def visible_scores(user, run_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per run, the domain scores of what ``user`` may see: two queries for any number of runs."""
    failing = set(
        Finding.objects.filter(run_id__in=run_ids)
        .filter(access.findings_q(user))
        .exclude(change=Finding.Change.FIXED)
        .values_list("run_id", "check_id", "target")
        .distinct()
    )
    per_run: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    for run_id, check_id, target, domain, severity, status in _outcomes_for(user, run_ids).values_list(
        "run_id", "check_id", "target", "domain", "severity", "status"
    ):
        if status == Outcome.Status.FAILED and (run_id, check_id, target) not in failing:
            status = Outcome.Status.PASSED  # what it found is hidden from this reader; it did look
        per_run[run_id].append((domain, severity, status))
    return {run_id: scores_of(per_run.get(run_id, ())) for run_id in run_ids}


def _trend(run: Run, user, whole: bool) -> list[tuple[int, datetime, dict[str, int]]]:
    runs = list(
        access.runs(user)
        .filter(template_id=run.template_id, status=Run.Status.FINISHED, created_at__lte=run.created_at)
        .order_by("-created_at")
        .values_list("pk", "created_at", "finished_at", "scores")[:TREND_RUNS]
    )
    runs.reverse()
    held = accounts_access.scope(user, INSPECTION_VIEW)
    ids = [pk for pk, *_rest in runs]
    partial = set()
    if not held.everywhere:
        clusters_of: dict[int, set[int]] = defaultdict(set)
        for run_id, cluster_id in Run.clusters.through.objects.filter(run_id__in=ids).values_list(
            "run_id", "cluster_id"
        ):
            clusters_of[run_id].add(cluster_id)
        partial = {pk for pk in ids if not clusters_of[pk] or not clusters_of[pk] <= held.clusters}
        if whole:
            partial.discard(run.pk)
    recomputed = visible_scores(user, sorted(partial)) if partial else {}
    return [
        (pk, finished or created, recomputed[pk] if pk in partial else dict(scores or {}))
        for pk, created, finished, scores in runs
    ]


def build_report(run: Run, user, *, limit: int = MAX_SHOWN) -> Report:
    """The report of ``run`` as ``user`` may read it."""
    whole = access.sees_whole_run(user, run)
    visible = Finding.objects.filter(run=run) if whole else access.visible_findings(user, run)
    changes: dict[str, int] = defaultdict(int)
    severities: dict[str, int] = defaultdict(int)
    for change, severity, count in visible.order_by().values_list("change", "severity").annotate(n=Count("pk")):
        changes[change] += count
        if change != Finding.Change.FIXED:
            severities[severity] += count
    outcomes = Outcome.objects.filter(run=run) if whole else _outcomes_for(user, [run.pk])
    statuses = dict(outcomes.order_by().values_list("status").annotate(n=Count("pk")))
    not_checked, not_checked_total = _not_checked(outcomes)
    trend = _trend(run, user, whole)
    mine = {pk: scores for pk, _when, scores in trend}
    if whole:
        scores = dict(run.scores or {})
    else:
        scores = mine[run.pk] if run.pk in mine else visible_scores(user, [run.pk])[run.pk]
    earlier = [scores for pk, _when, scores in trend if pk != run.pk]
    previous = earlier[-1] if earlier else {}
    domains = [DomainScore(d, scores[d], previous.get(d)) for d in Domain.values if d in scores]
    return Report(
        run=run,
        whole=whole,
        scores=scores,
        domains=domains,
        trend=[(when, scores) for _pk, when, scores in trend],
        sections=_sections(visible, changes, limit),
        changes={c: changes.get(c, 0) for c in CHANGES},
        severities={s: severities.get(s, 0) for s in SEVERITIES},
        outcomes={s: statuses.get(s, 0) for s in Outcome.Status.values},
        not_checked=not_checked,
        not_checked_total=not_checked_total if whole else len(not_checked),
        clusters=sorted(run.clusters.values_list("name", flat=True)),
    )


def summary_lines(report: Report, *, worst: bool = True) -> list[str]:
    """The report in a few sentences of the active language (the email's body, its text part); with ``worst``,
    a line for each of the worst new findings."""
    lines = []
    if report.domains:
        parts = []
        for d in report.domains:
            delta = "" if not d.delta else f" ({d.delta:+d})"
            parts.append(f"{d.label} {d.score}{delta}")
        lines.append(_("Scores: %(scores)s.") % {"scores": ", ".join(parts)})
    else:
        lines.append(_("No check could look: there is no score."))
    changes = report.changes
    lines.append(
        ngettext("%(count)s new finding", "%(count)s new findings", changes["new"]) % {"count": changes["new"]}
        + ", "
        + ngettext("%(count)s fixed", "%(count)s fixed", changes["fixed"]) % {"count": changes["fixed"]}
        + ", "
        + ngettext("%(count)s unchanged.", "%(count)s unchanged.", changes["unchanged"])
        % {"count": changes["unchanged"]}
    )
    sev = report.severities
    lines.append(
        _("Still open: %(critical)s critical, %(warning)s warning, %(info)s info.")
        % {"critical": sev["critical"], "warning": sev["warning"], "info": sev["info"]}
    )
    if report.not_checked_total:
        lines.append(
            ngettext(
                "%(count)s check could not look; the report says why.",
                "%(count)s checks could not look; the report says why.",
                report.not_checked_total,
            )
            % {"count": report.not_checked_total}
        )
    for block, item in report.worst_new() if worst else ():
        lines.append(f"[{block.severity_label}] {render(block.title)}: {item.subject} - {render(item.message)}")
    return lines


# Charts drawn here, as SVG, so that the PDF (WeasyPrint runs no script) and the page show the same picture --------

CHART_FONT = "Noto Sans CJK SC, Helvetica, Arial, sans-serif"


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def line_chart(
    labels: list[str],
    lines: list[tuple[str, str, list[float | None]]],
    *,
    top: float,
    width: int = 640,
    height: int = 200,
    testid: str = "",
) -> SafeString:
    """A line chart: ``labels`` along the bottom, ``lines`` as (label, colour, values, None for a gap), from 0 to
    ``top``. Every text is escaped here."""
    left, right, upper, bottom = 40, 24, 10, 42
    plot_w, plot_h = width - left - right, height - upper - bottom
    top = top if top > 0 else 1
    count = max(len(labels), 1)

    def x(i: int) -> float:
        return left + (plot_w / 2 if count == 1 else plot_w * i / (count - 1))

    def y(v: float) -> float:
        return upper + plot_h * (1 - min(max(v, 0), top) / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="km-chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{CHART_FONT}" font-size="10" role="img"'
        + (f' data-testid="{escape(testid)}"' if testid else "")
        + ">"
    ]
    for step in range(5):
        value = top * step / 4
        py = y(value)
        parts.append(
            f'<line x1="{left}" y1="{py:.1f}" x2="{width - right}" y2="{py:.1f}" stroke="#dce1e7" stroke-width="1"/>'
            f'<text x="{left - 4}" y="{py + 3:.1f}" text-anchor="end" fill="#667382">{_number(value)}</text>'
        )
    every = max(1, -(-count // 8))  # at most eight dates written along the bottom
    for i, label in enumerate(labels):
        if i % every == 0 or i == count - 1:
            parts.append(
                f'<text x="{x(i):.1f}" y="{upper + plot_h + 14}" text-anchor="middle" fill="#667382">'
                f"{escape(label)}</text>"
            )
    legend_x = left
    for name, colour, values in lines:
        segment: list[str] = []
        segments = []
        for i, value in enumerate(values):
            if value is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{x(i):.1f},{y(value):.1f}")
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="2.5" fill="{colour}"/>')
        if segment:
            segments.append(segment)
        for seg in segments:
            if len(seg) > 1:
                parts.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(
            f'<rect x="{legend_x}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="{height - 5}" fill="#1d273b">{escape(name)}</text>'
        )
        legend_x += 24 + 7 * len(str(name)) + (7 * sum(1 for ch in str(name) if ord(ch) > 0x2E80))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every text above is escaped)


def score_chart(trend: list[tuple[datetime, dict[str, int]]], *, width: int = 640, height: int = 200) -> SafeString:
    """The domains' scores over the runs of ``trend``, 0 to 100."""
    domains = [d for d in Domain.values if any(d in scores for _when, scores in trend)]
    days = [timezone.localtime(when).strftime("%m-%d") for when, _scores in trend]
    if len(set(days)) < len(days):  # several runs a day: the hour tells them apart
        days = [timezone.localtime(when).strftime("%m-%d %H:%M") for when, _scores in trend]
    labels = days
    lines = [(Domain(d).label, DOMAIN_COLORS[d], [scores.get(d) for _when, scores in trend]) for d in domains]
    return line_chart(labels, lines, top=100, width=width, height=height, testid="score-trend")
