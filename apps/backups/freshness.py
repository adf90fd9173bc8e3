"""How fresh each plan's newest good backup is, against its recovery point objective: for the backups pages and
the inspection's ``cluster.backups.fresh`` check.

etcd and database plans: the newest good ``Backup`` row, the last rows of every plan read in one query. Velero plans:
the newest Completed Velero Backup labelled with the plan (those its Schedule made and those run from the console),
read from the cluster once per cluster (as the person for a page; as Kubemate's own identity, which may read
Velero's objects, for the inspection).

The pages show each plan as a ``PlanRow``: its freshness, its schedule in words, a sparkline of its last good
backups and what the person may do with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cron_descriptor import ExpressionDescriptor, FormatException, MissingFieldException, Options
from cron_descriptor import WrongArgumentException as CronArgumentException
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from apps.accounts.capabilities import BACKUPS_RUN, BACKUPS_SCHEDULE
from apps.backups import access
from apps.backups.models import Backup, Kind, Plan
from apps.backups.velero import k8s
from apps.clusters import kube
from apps.clusters.models import Cluster

TREND = 20
SPARK_WIDTH, SPARK_HEIGHT = 120, 28


@dataclass
class Freshness:
    plan: Plan
    last_good: datetime | None
    trend: list[int] = field(default_factory=list)  # sizes (etcd, database) or items (Velero), oldest first
    failed_since: int = 0  # failures after the last good backup
    unknown: str = ""  # why Velero's backups could not be read

    @property
    def age_hours(self) -> float | None:
        if self.last_good is None:
            return None
        return (timezone.now() - self.last_good).total_seconds() / 3600

    @property
    def stale(self) -> bool:
        age = self.age_hours
        return age is None or age > self.plan.rpo_hours


def _from_rows(plans: list[Plan]) -> dict[int, Freshness]:
    """Each etcd or database plan's freshness from its last ``TREND * 2`` finished rows, every plan's in one query."""
    rows: dict[int, list[Backup]] = {}
    if plans:
        recent = (
            Backup.objects.filter(plan__in=plans)
            .exclude(status=Backup.Status.RUNNING)
            .annotate(
                row=Window(RowNumber(), partition_by=[F("plan_id")], order_by=[F("started_at").desc(), F("pk").desc()])
            )
            .filter(row__lte=TREND * 2)
            .only("plan_id", "status", "size_bytes", "started_at", "finished_at")
            .order_by("plan_id", "-started_at", "-pk")
        )
        for backup in recent:
            rows.setdefault(backup.plan_id, []).append(backup)
    found = {}
    for plan in plans:
        taken = rows.get(plan.pk, [])
        good = [b for b in taken if b.status == Backup.Status.SUCCEEDED]
        last = good[0].finished_at if good else None
        failed = 0
        for backup in taken:
            if backup.status == Backup.Status.SUCCEEDED:
                break
            failed += 1
        found[plan.pk] = Freshness(plan, last, [b.size_bytes or 0 for b in reversed(good[:TREND])], failed)
    return found


def _from_velero(plan: Plan, views: list[k8s.BackupView]) -> Freshness:
    mine = [v for v in views if v.plan == str(plan.pk) or (plan.velero_name and v.schedule == plan.velero_name)]
    good = [v for v in mine if v.good]
    last = max((v.completed or v.started for v in good if v.completed or v.started), default=None)
    failed = 0
    for view in sorted(mine, key=lambda v: v.started or k8s.EPOCH, reverse=True):
        if view.good:
            break
        if view.done:
            failed += 1
    ordered = sorted(good, key=lambda v: v.completed or v.started or k8s.EPOCH)
    return Freshness(plan, last, [v.items_done for v in ordered[-TREND:]], failed)


def velero_backups(cluster: Cluster, *, as_user=None) -> list[k8s.BackupView]:
    """Velero's backups in ``cluster`` (KubeError when they cannot be read)."""
    with kube.client(cluster, as_user=as_user) as k:
        return k8s.backups(k, cluster.velero_namespace)


def of_plans(plans, *, as_user=None) -> list[Freshness]:
    """The freshness of each plan, in their order: etcd and database plans from one query, Velero's backups read
    once per cluster."""
    plans = list(plans)
    rows = _from_rows([p for p in plans if p.kind != Kind.VELERO])
    velero: dict[int, list[k8s.BackupView] | str] = {}
    found = []
    for plan in plans:
        if plan.kind != Kind.VELERO:
            found.append(rows[plan.pk])
            continue
        if plan.cluster_id not in velero:
            try:
                velero[plan.cluster_id] = velero_backups(plan.cluster, as_user=as_user)
            except kube.KubeError as exc:
                velero[plan.cluster_id] = str(exc)[:300] or "?"
        views = velero[plan.cluster_id]
        if isinstance(views, str):
            found.append(Freshness(plan, None, unknown=views))
        else:
            found.append(_from_velero(plan, views))
    return found


# The pages' rows -----------------------------------------------------------------------------------------------------


@dataclass
class PlanRow:
    plan: Plan
    fresh: Freshness
    schedule: str
    spark: dict | None
    may_run: bool
    may_edit: bool

    @property
    def state(self) -> str:
        """fresh, stale (older than the RPO), none (no good backup yet) or unknown (Velero could not be read)."""
        if self.fresh.unknown:
            return "unknown"
        if self.fresh.last_good is None:
            return "none"
        return "stale" if self.fresh.stale else "fresh"


def by_plan(user, plans: list[Plan]) -> dict[int, Freshness]:
    """Each plan's freshness by its pk, Velero's backups read as ``user``; a Velero plan of a cluster without
    Velero is not asked."""
    found: dict[int, Freshness] = {}
    asked = []
    for plan in plans:
        if plan.kind == Kind.VELERO and not plan.cluster.velero_namespace:
            found[plan.pk] = Freshness(plan, None, unknown=_("Velero is not set up for this cluster."))
        else:
            asked.append(plan)
    for fresh in of_plans(asked, as_user=user):
        found[fresh.plan.pk] = fresh
    return found


def schedule_words(cron: str) -> str:
    """``0 2 * * *`` as "At 02:00", in the reader's language ("" when it cannot be said)."""
    if not cron:
        return ""
    options = Options()
    options.locale_code = "zh_CN" if (translation.get_language() or "").startswith("zh") else "en_US"
    options.use_24hour_time_format = True
    try:
        return ExpressionDescriptor(cron, options).get_description()
    except (FormatException, MissingFieldException, CronArgumentException, ValueError, KeyError, IndexError):
        return ""


def sparkline(values: list[int]) -> dict | None:
    """The points of a small line of ``values`` (oldest first) inside SPARK_WIDTH x SPARK_HEIGHT."""
    if len(values) < 2:
        return None
    low, high = min(values), max(values)
    span = (high - low) or 1
    step = (SPARK_WIDTH - 4) / (len(values) - 1)
    points = " ".join(
        f"{2 + i * step:.1f},{SPARK_HEIGHT - 3 - (v - low) * (SPARK_HEIGHT - 6) / span:.1f}"
        for i, v in enumerate(values)
    )
    return {
        "points": points,
        "width": SPARK_WIDTH,
        "height": SPARK_HEIGHT,
        "first": values[0],
        "last": values[-1],
        "low": low,
        "high": high,
        "count": len(values),
    }


def plan_rows(user, plans: list[Plan]) -> list[PlanRow]:
    """The pages' row of each plan: its freshness, schedule in words, size trend and what ``user`` may do."""
    fresh = by_plan(user, plans)
    return [
        PlanRow(
            plan=plan,
            fresh=fresh[plan.pk],
            schedule=schedule_words(plan.cron),
            spark=sparkline(fresh[plan.pk].trend),
            may_run=access.may_plan(user, BACKUPS_RUN, plan),
            may_edit=access.may_plan(user, BACKUPS_SCHEDULE, plan),
        )
        for plan in plans
    ]
