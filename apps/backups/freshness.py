"""How fresh each plan's newest good backup is, against its recovery point objective: for the backups pages and
the inspection's ``cluster.backups.fresh`` check.

etcd and database plans: the newest good ``Backup`` row. Velero plans: the newest Completed Velero Backup labelled
with the plan (those its Schedule made and those run from the console), read from the cluster (as the person for a
page; as Kubemate's own identity, which may read Velero's objects, for the inspection).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from apps.backups.models import Backup, Kind, Plan
from apps.backups.velero import k8s
from apps.clusters import kube
from apps.clusters.models import Cluster

TREND = 20


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


def _from_rows(plan: Plan) -> Freshness:
    rows = list(
        Backup.objects.filter(plan=plan).exclude(status=Backup.Status.RUNNING).order_by("-started_at")[: TREND * 2]
    )
    good = [b for b in rows if b.status == Backup.Status.SUCCEEDED]
    last = good[0].finished_at if good else None
    failed = 0
    for row in rows:
        if row.status == Backup.Status.SUCCEEDED:
            break
        failed += 1
    return Freshness(plan, last, [b.size_bytes or 0 for b in reversed(good[:TREND])], failed)


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
    """The freshness of each plan; Velero's backups read once per cluster."""
    velero: dict[int, list[k8s.BackupView] | str] = {}
    found = []
    for plan in plans:
        if plan.kind != Kind.VELERO:
            found.append(_from_rows(plan))
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
