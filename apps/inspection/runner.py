"""The body of an inspection job: run a template's checks against its targets, keep every outcome and finding,
compare with the previous run (new, unchanged, fixed) and score each domain.

Inventory kinds are streamed once per cluster: every object check of a kind sees each row in the same pass
(``_sweep_kind``), so a 15,000-pod cluster is read once however many pod checks the template holds. Findings kept
per check and target are capped (``MAX_FINDINGS``); the outcome keeps the true count.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.capabilities import INSPECTION_RUN
from apps.clusters.models import Cluster
from apps.core.deferred import N_, fit, sentence_of
from apps.core.deferred import text as D
from apps.inspection import access
from apps.inspection.catalogue import CATALOGUE
from apps.inspection.checks.base import WEIGHT, CannotCheck, Check, Domain, Finding, ObjectCheck
from apps.inspection.checks.context import Context
from apps.inspection.models import DatabaseTarget, HostAgent, Measurement, Run
from apps.inspection.models import Finding as FindingRow
from apps.inspection.models import Outcome as OutcomeRow

logger = logging.getLogger(__name__)

MAX_FINDINGS = 200  # kept per check and target; Outcome.found has the full count


@dataclass
class Result:
    """One check against one target."""

    check: Check
    target: str
    cluster_id: int | None
    status: str
    findings: list[Finding] = field(default_factory=list)
    found: int = 0
    reason: str = ""
    seconds: float = 0.0

    def add(self, items: Iterable[Finding] | None) -> None:
        for item in items or ():
            self.found += 1
            if len(self.findings) < MAX_FINDINGS:
                self.findings.append(item)


def target_label(target) -> str:
    if isinstance(target, Cluster):
        return f"cluster:{target.name}"
    if isinstance(target, HostAgent):
        return f"agent:{target.name}"
    if isinstance(target, DatabaseTarget):
        return f"database:{target.name}"
    raise TypeError(target)


def _cluster_of(target) -> int | None:
    if isinstance(target, Cluster):
        return target.pk
    return getattr(target, "cluster_id", None)


def _not_checked(check: Check, target, reason: str) -> Result:
    return Result(check, target_label(target), _cluster_of(target), OutcomeRow.Status.NOT_CHECKED, reason=reason)


def _failure_sentence(check: Check, exc: Exception) -> str:
    if isinstance(exc, CannotCheck):
        return sentence_of(exc)
    logger.exception("inspection check failed", extra={"check": check.id})
    return D(N_("The check stopped with an unexpected error: %(error)s"), error=type(exc).__name__)


def _close(result: Result) -> Result:
    if result.status != OutcomeRow.Status.NOT_CHECKED:
        result.status = OutcomeRow.Status.FAILED if result.found else OutcomeRow.Status.PASSED
    return result


def run_one(ctx: Context, check: Check, target) -> Result:
    """``check`` against ``target`` alone (a page's "check again", the tests)."""
    if isinstance(check, ObjectCheck):
        return _sweep_kind(ctx, [check], target)[0]
    return _run_whole(ctx, check, target)


def _run_whole(ctx: Context, check: Check, target) -> Result:
    started = time.monotonic()
    result = Result(check, target_label(target), _cluster_of(target), OutcomeRow.Status.PASSED)
    try:
        result.add(check.run(ctx, target))
    except Exception as exc:  # noqa: BLE001 (every failure of one check is its outcome, not the run's end)
        result = _not_checked(check, target, _failure_sentence(check, exc))
    result.seconds = time.monotonic() - started
    return _close(result)


def _sweep_kind(ctx: Context, checks: list[ObjectCheck], cluster: Cluster) -> list[Result]:
    """Every object check of one kind over one streamed pass of that kind's rows."""
    started = time.monotonic()
    results = [Result(c, target_label(cluster), cluster.pk, OutcomeRow.Status.PASSED) for c in checks]
    live = list(zip(checks, results, strict=True))
    for row in ctx.rows(cluster, checks[0].kind):
        for check, result in live:
            if result.status == OutcomeRow.Status.NOT_CHECKED:
                continue
            try:
                result.add(check.visit(ctx, row))
            except Exception as exc:  # noqa: BLE001
                result.status = OutcomeRow.Status.NOT_CHECKED
                result.reason = _failure_sentence(check, exc)
                result.findings.clear()
                result.found = 0
    elapsed = (time.monotonic() - started) / max(1, len(results))
    for result in results:
        result.seconds = elapsed
        _close(result)
    return results


@dataclass
class Targets:
    clusters: list[Cluster]
    agents: list[HostAgent]
    databases: list[DatabaseTarget]


def targets_of(run: Run) -> Targets:
    """The run's clusters (chosen when it was started, within what its actor may inspect), and the agents and
    databases of the template placed on those clusters, or placed nowhere when the actor inspects the platform."""
    template = run.template
    clusters = list(run.clusters.all())
    placed = Q(cluster__in=[c.pk for c in clusters])
    if run.actor is None or access.whole(run.actor, INSPECTION_RUN, []):
        placed |= Q(cluster__isnull=True)
    agents = HostAgent.objects.filter(enabled=True).filter(placed)
    if not template.all_agents:
        agents = agents.filter(pk__in=template.agents.values("pk"))
    databases = DatabaseTarget.objects.filter(enabled=True).filter(placed)
    if not template.all_databases:
        databases = databases.filter(pk__in=template.databases.values("pk"))
    return Targets(clusters, list(agents), list(databases))


def inspect(ctx: Context, checks: list[Check], targets: Targets, progress: Callable[[int, str], None]) -> list[Result]:
    """Every check against every target it applies to; ``progress(percent, sentence)`` between steps."""
    results: list[Result] = []
    steps = max(1, len(targets.clusters) + len(targets.agents) + len(targets.databases))
    done = 0
    cluster_checks = [c for c in checks if c.target == "cluster"]
    for cluster in targets.clusters:
        progress(5 + 90 * done // steps, D(N_("Checking cluster %(cluster)s."), cluster=cluster.name))
        if not ctx.synced(cluster):
            reason = D(N_("The inventory of cluster %(cluster)s has not been read yet."), cluster=cluster.name)
            results += [_not_checked(c, cluster, reason) for c in cluster_checks]
        else:
            by_kind: dict[str, list[ObjectCheck]] = defaultdict(list)
            for check in cluster_checks:
                if isinstance(check, ObjectCheck):
                    by_kind[check.kind].append(check)
                else:
                    results.append(_run_whole(ctx, check, cluster))
            for kind_checks in by_kind.values():
                results += _sweep_kind(ctx, kind_checks, cluster)
        done += 1
    for kind, items in (("agent", targets.agents), ("database", targets.databases)):
        for target in items:
            progress(5 + 90 * done // steps, D(N_("Checking %(target)s."), target=target_label(target)))
            for check in checks:
                if check.target != kind or (check.engine and check.engine != getattr(target, "engine", "")):
                    continue
                results.append(_run_whole(ctx, check, target))
            done += 1
    return results


def fingerprint(check_id: str, target: str, subject: str) -> str:
    return hashlib.sha256(f"{check_id}\0{target}\0{subject}".encode()).hexdigest()


def scores_of(outcomes: Iterable[tuple[str, str, str]]) -> dict[str, int]:
    """Per domain, 100 x the weight of passed outcomes / the weight of outcomes that looked. ``outcomes`` are
    (domain, severity, status)."""
    passed: dict[str, int] = defaultdict(int)
    looked: dict[str, int] = defaultdict(int)
    for domain, severity, status in outcomes:
        if status == OutcomeRow.Status.NOT_CHECKED:
            continue
        looked[domain] += WEIGHT[severity]
        if status == OutcomeRow.Status.PASSED:
            passed[domain] += WEIGHT[severity]
    return {d: round(100 * passed[d] / looked[d]) for d in Domain.values if looked[d]}


def previous_run(run: Run) -> Run | None:
    earlier = Run.objects.filter(template=run.template, status=Run.Status.FINISHED, created_at__lt=run.created_at)
    if run.schedule_id:
        # A schedule's report compares with that schedule's last run when there is one.
        scheduled = earlier.filter(schedule=run.schedule).order_by("-created_at").first()
        if scheduled:
            return scheduled
    return earlier.order_by("-created_at").first()


def store(run: Run, results: list[Result], measured: list[tuple[str, str, float]] = ()) -> None:
    """Keep every outcome and finding, mark each new / unchanged, add what was fixed, score. One transaction."""
    previous = previous_run(run)
    before: dict[str, FindingRow] = {}
    if previous:
        for row in FindingRow.objects.filter(run=previous).exclude(change=FindingRow.Change.FIXED):
            before[row.fingerprint] = row
    outcomes, findings, now_seen, looked = [], [], set(), set()
    for r in results:
        check = r.check
        outcomes.append(
            OutcomeRow(
                run=run,
                check_id=check.id,
                domain=check.domain,
                severity=check.severity,
                target=r.target,
                cluster_id=r.cluster_id,
                status=r.status,
                found=r.found,
                reason=fit(r.reason, 500),
                seconds=round(r.seconds, 4),
            )
        )
        if r.status != OutcomeRow.Status.NOT_CHECKED:
            looked.add((check.id, r.target))
        for f in r.findings:
            fp = fingerprint(check.id, r.target, f.subject)
            if fp in now_seen:
                continue
            now_seen.add(fp)
            findings.append(
                FindingRow(
                    run=run,
                    check_id=check.id,
                    domain=check.domain,
                    severity=f.severity or check.severity,
                    target=r.target,
                    cluster_id=r.cluster_id,
                    namespace=f.namespace[:63],
                    subject=f.subject[:400],
                    message=f.message,
                    facts=f.facts,
                    fingerprint=fp,
                    change=FindingRow.Change.UNCHANGED if fp in before else FindingRow.Change.NEW,
                )
            )
    for fp, old in before.items():
        if fp not in now_seen and (old.check_id, old.target) in looked:
            findings.append(
                FindingRow(
                    run=run,
                    check_id=old.check_id,
                    domain=old.domain,
                    severity=old.severity,
                    target=old.target,
                    cluster_id=old.cluster_id,
                    namespace=old.namespace,
                    subject=old.subject,
                    message=old.message,
                    facts=old.facts,
                    fingerprint=fp,
                    change=FindingRow.Change.FIXED,
                )
            )
    counts = defaultdict(int)
    for f in findings:
        counts[f.change] += 1
    for o in outcomes:
        counts[o.status] += 1
    with transaction.atomic():
        OutcomeRow.objects.filter(run=run).delete()
        FindingRow.objects.filter(run=run).delete()
        OutcomeRow.objects.bulk_create(outcomes, batch_size=1000)
        FindingRow.objects.bulk_create(findings, batch_size=1000)
        Measurement.objects.filter(run=run).delete()
        Measurement.objects.bulk_create(
            [Measurement(run=run, target=t, key=k[:300], value=v) for t, k, v in measured], batch_size=1000
        )
        Run.objects.filter(pk=run.pk).update(
            previous=previous,
            scores=scores_of((o.domain, o.severity, o.status) for o in outcomes),
            counts=dict(counts),
            status=Run.Status.FINISHED,
            finished_at=timezone.now(),
        )


def expand(selection: Iterable[str]) -> list[Check]:
    """Catalogue checks named by id or by a prefix ending in "." (``security.`` is every security check)."""
    chosen: dict[str, Check] = {}
    for item in selection:
        if item.endswith("."):
            chosen.update({k: c for k, c in CATALOGUE.items() if k.startswith(item)})
        elif item in CATALOGUE:
            chosen[item] = CATALOGUE[item]
    return list(chosen.values())


def checks_of(run: Run) -> list[Check]:
    return expand(run.template.checks)


def execute(run: Run, progress: Callable[[int, str], None]) -> Run:
    """Run ``run`` to its end and keep what it found; returns the refreshed row."""
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING, started_at=timezone.now())
    ctx = Context(thresholds=run.template.thresholds, actor=run.actor)
    results = inspect(ctx, checks_of(run), targets_of(run), progress)
    progress(96, D(N_("Comparing with the previous run.")))
    store(run, results, ctx.measured)
    run.refresh_from_db()
    return run


def visible_findings(run: Run, q: Q):
    return FindingRow.objects.filter(run=run).filter(q)
