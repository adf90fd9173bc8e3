"""What in a cluster needs a person: failing pods, degraded workloads, unhealthy nodes, and warning events.

Read from the inventory tables, limited to what the user may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts import access
from apps.clusters.inventory.words import POD_PROBLEMS, duration_words
from apps.clusters.models import Resource

PENDING_TOO_LONG = timedelta(minutes=5)


def warning_events(user, cluster, limit: int = 20) -> list[Resource]:
    """The newest warning events (by when they last happened)."""
    rows = access.resources(user, cluster, "Event").filter(status="Warning")
    newest = rows.annotate(last=KeyTextTransform("last", "summary")).order_by("-last", "-id")
    return list(newest.only("id", "kind", "namespace", "name", "status", "summary", "created")[:limit])


@dataclass
class Attention:
    resource: Resource
    reason: str
    severity: int


def _attention_reason(row: Resource, now: datetime) -> tuple[str, int]:
    status = row.status
    if row.kind == "Pod":
        reasons = {
            "CrashLoopBackOff": _("keeps crashing and being restarted"),
            "ImagePullBackOff": _("cannot pull its image"),
            "ErrImagePull": _("cannot pull its image"),
            "CreateContainerConfigError": _("its container settings refer to something missing (ConfigMap or Secret)"),
            "RunContainerError": _("its container cannot start"),
            "Failed": _("has failed"),
        }
        if status == "Pending":
            waited = duration_words((now - row.created).total_seconds()) if row.created else "?"
            return _("has been waiting to start for %(age)s") % {"age": waited}, 1
        return reasons.get(status, status), 0
    if row.kind == "Node":
        if status.startswith("NotReady"):
            return _("is not ready: its pods may be unreachable"), 0
        return _("is cordoned: no new pods are placed on it"), 2
    if row.kind in ("Deployment", "StatefulSet", "DaemonSet"):
        s = row.summary or {}
        return _("has %(ready)s of %(desired)s replicas ready") % {
            "ready": s.get("ready", 0),
            "desired": s.get("desired", 0),
        }, 1
    if row.kind == "PersistentVolumeClaim":
        return _("is waiting for a volume"), 1
    if row.kind == "Job":
        return _("has failed"), 1
    return status, 2


def attention(user, cluster, now: datetime | None = None, limit: int = 100) -> tuple[list[Attention], int]:
    """Objects that need a person: failing pods, degraded workloads, unhealthy nodes, pending claims, failed jobs."""
    now = now or timezone.now()
    wanted = [
        ("Pod", Q(status__in=POD_PROBLEMS) | Q(status="Pending", created__lt=now - PENDING_TOO_LONG)),
        ("Deployment", Q(status="Degraded")),
        ("StatefulSet", Q(status="Degraded")),
        ("DaemonSet", Q(status="Degraded")),
        ("Node", Q(status__startswith="NotReady") | Q(status__endswith="SchedulingDisabled")),
        ("PersistentVolumeClaim", Q(status="Pending")),
        ("Job", Q(status="Failed")),
    ]
    combined = None
    for kind, condition in wanted:
        q = access.resources_q(user, cluster, kind)
        if q is None:
            continue
        term = Q(kind=kind) & condition & q
        combined = term if combined is None else combined | term
    if combined is None:
        return [], 0
    rows = Resource.objects.filter(cluster=cluster).filter(combined)
    found = list(
        rows.only("id", "kind", "namespace", "name", "status", "summary", "created").order_by("kind", "name")[:limit]
    )
    total = len(found) if len(found) < limit else rows.count()
    items = []
    for row in found:
        reason, severity = _attention_reason(row, now)
        items.append(Attention(row, reason, severity))
    items.sort(key=lambda a: (a.severity, a.resource.kind, a.resource.namespace, a.resource.name))
    return items, total
