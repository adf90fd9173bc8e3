"""Storage, backups and images: volume claims that wait or fill up, volumes left behind, the age of the last etcd
backup, registries the workloads pull from, images left on nodes that nothing runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from apps.clusters.models import Cluster
from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.inspection import registry
from apps.inspection.checks.base import CannotCheck, Domain, Finding, Severity, check, object_check
from apps.inspection.checks.security import TEMPLATE_KINDS, containers_of, pod_spec_of
from apps.inspection.models import Measurement
from apps.observability import prometheus

CLUSTER = Domain.CLUSTER
MAX_REGISTRIES = 20
BACKUP_LABEL = "kubemate.io/backup"
FULLNESS = (
    "max by (namespace, persistentvolumeclaim) "
    "(kubelet_volume_stats_used_bytes / kubelet_volume_stats_capacity_bytes) * 100"
)


@object_check(
    "cluster.pvc.pending",
    "PersistentVolumeClaim",
    Severity.WARNING,
    _("Volume claims are bound"),
    _("A claim that stays Pending holds its pods in Pending too: the application does not start."),
    _("Check the claim's events: a missing StorageClass, no volume of that size, or a provisioner that fails."),
)
def pvc_pending(ctx, row) -> Iterator[Finding]:
    if ((row.object.get("status") or {}).get("phase") or "") == "Pending":
        storage_class = (row.object.get("spec") or {}).get("storageClassName") or "—"
        yield Finding(
            subject=row.key,
            namespace=row.namespace,
            message=D(
                N_("Claim %(name)s is Pending (storage class %(class)s)."), name=row.name, **{"class": storage_class}
            ),
        )


@object_check(
    "cluster.pv.released",
    "PersistentVolume",
    Severity.INFO,
    _("No volume is left released or failed"),
    _("A Released or Failed volume still holds its disk and data: storage is paid for and data kept that nobody owns."),
    _("Back up what is needed, then delete the volume (and its disk), or make it Available again on purpose."),
)
def pv_released(ctx, row) -> Iterator[Finding]:
    phase = (row.object.get("status") or {}).get("phase") or ""
    if phase in ("Released", "Failed"):
        claim = (row.object.get("spec") or {}).get("claimRef") or {}
        yield Finding(
            subject=row.key,
            message=D(
                N_("Volume %(name)s is %(phase)s (it was claimed by %(claim)s)."),
                name=row.name,
                phase=phase,
                claim=f"{claim.get('namespace', '')}/{claim.get('name', '')}".strip("/") or "—",
            ),
        )


@check(
    "cluster.pvc.nearly_full",
    CLUSTER,
    Severity.WARNING,
    _("Volumes have room left"),
    _("A full volume stops the database or the application writing to it, often with data loss or corruption."),
    _("Expand the claim (allowVolumeExpansion) or clean up old data before it fills; alert at 85 %."),
)
def pvc_nearly_full(ctx, cluster: Cluster) -> Iterator[Finding]:
    try:
        samples = prometheus.query(ctx.prometheus(cluster), FULLNESS)
    except prometheus.PrometheusError as exc:
        raise CannotCheck(exc.stored if hasattr(exc, "stored") else str(exc)) from exc
    limit = ctx.threshold("pvc.full_percent")
    for sample in samples:
        namespace = str(sample.labels.get("namespace") or "")
        claim = str(sample.labels.get("persistentvolumeclaim") or "")
        if claim and sample.value >= limit:
            yield Finding(
                subject=f"PersistentVolumeClaim {namespace}/{claim}",
                namespace=namespace,
                message=D(N_("Claim %(name)s is %(percent)s%% full."), name=claim, percent=round(sample.value, 1)),
                facts={"percent": round(sample.value, 1)},
            )


def _finished_at(job: dict) -> datetime | None:
    status = job.get("status") or {}
    if not status.get("succeeded"):
        return None
    return parse_datetime(str(status.get("completionTime") or ""))


@check(
    "cluster.etcd.backup",
    CLUSTER,
    Severity.CRITICAL,
    _("etcd is backed up"),
    _(
        "etcd holds every object of the cluster: without a recent snapshot, a lost control plane loses the cluster's "
        "whole configuration."
    ),
    _(
        "Schedule an etcd snapshot (a CronJob labelled kubemate.io/backup=etcd, or Kubemate's backups) at least daily "
        "and keep copies off the cluster."
    ),
)
def etcd_backup(ctx, cluster: Cluster) -> Iterator[Finding]:
    """Until Kubemate's backups feature records snapshots itself, the backup is a CronJob labelled
    ``kubemate.io/backup=etcd`` (or named etcd-backup); its newest successful Job says how old the last one is."""
    cronjobs = {
        (r.namespace, r.name)
        for r in ctx.rows(cluster, "CronJob")
        if (r.labels or {}).get(BACKUP_LABEL) == "etcd" or "etcd-backup" in r.name
    }
    if not cronjobs:
        yield Finding(
            subject="etcd", message=D(N_("No etcd backup is scheduled in cluster %(cluster)s."), cluster=cluster.name)
        )
        return
    newest: datetime | None = None
    for row in ctx.rows(cluster, "Job"):
        owner = next(
            (o for o in row.object.get("metadata", {}).get("ownerReferences") or [] if o.get("kind") == "CronJob"), None
        )
        if owner and (row.namespace, owner.get("name")) in cronjobs:
            done = _finished_at(row.object)
            if done and (newest is None or done > newest):
                newest = done
    limit = ctx.threshold("etcd.backup_max_hours")
    if newest is None:
        yield Finding(
            subject="etcd",
            message=D(N_("The etcd backup has never succeeded in cluster %(cluster)s."), cluster=cluster.name),
        )
        return
    hours = (ctx.now - newest).total_seconds() / 3600
    if hours > limit:
        yield Finding(
            subject="etcd",
            message=D(
                N_("The last etcd backup succeeded %(hours)s hours ago (at most %(limit)s)."),
                hours=int(hours),
                limit=int(limit),
            ),
            facts={"hours": round(hours, 1)},
        )


def registry_of(image: str) -> str:
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


@check(
    "cluster.registry.reachable",
    CLUSTER,
    Severity.WARNING,
    _("Registries the workloads pull from answer"),
    _(
        "When a registry does not answer, no pod of its images can start: a rollout, a rescheduled pod or a scaled "
        "workload waits in ImagePullBackOff."
    ),
    _(
        "Check the registry service and its certificate, and the network path from the nodes; keep a mirror inside "
        "the bank's network."
    ),
)
def registry_reachable(ctx, cluster: Cluster) -> Iterator[Finding]:
    hosts: dict[str, int] = {}
    for kind in TEMPLATE_KINDS:
        for row in ctx.rows(cluster, kind):
            spec = pod_spec_of(kind, row.object)
            for container in containers_of(spec or {}):
                host = registry_of(str(container.get("image") or ""))
                hosts[host] = hosts.get(host, 0) + 1
    for host in sorted(hosts, key=lambda h: -hosts[h])[:MAX_REGISTRIES]:
        why = ctx.once(("registry", host), lambda host=host: registry.probe(host))
        if why:
            yield Finding(subject=f"registry {host}", message=why, facts={"containers": hosts[host]})


def first_seen(ctx, target: str) -> dict[str, datetime]:
    """When earlier runs first saw each image unused, in one query for the cluster."""

    def build():
        found: dict[str, datetime] = {}
        rows = Measurement.objects.filter(target=target, key__startswith="unused:").order_by("measured_at")
        for key, when in rows.values_list("key", "measured_at")[:100_000]:
            found.setdefault(key, when)
        return found

    return ctx.once(("images-first-seen", target), build)


@check(
    "cluster.images.unused",
    CLUSTER,
    Severity.INFO,
    _("Nodes do not keep images nothing runs"),
    _(
        "Images that no pod has used for weeks fill the nodes' disks until the kubelet starts evicting pods to free "
        "space."
    ),
    _("Let the kubelet's image garbage collection remove them (imageGCHighThresholdPercent), or prune on the node."),
)
def images_unused(ctx, cluster: Cluster) -> Iterator[Finding]:
    """An image on a node (Node status.images) that no pod of the cluster runs is remembered from the first run that
    saw it unused (a measurement); once that is longer ago than ``image.unused_days``, it is a finding."""
    used: set[str] = set()
    for row in ctx.rows(cluster, "Pod"):
        for container in containers_of(row.object.get("spec") or {}):
            used.add(str(container.get("image") or ""))
    target = f"cluster:{cluster.name}"
    for row in ctx.rows(cluster, "Node"):
        for image in (row.object.get("status") or {}).get("images") or []:
            names = [n for n in image.get("names") or [] if "@sha256:" not in n] or list(image.get("names") or [])[:1]
            if not names or any(n in used for n in image.get("names") or []):
                continue
            key = f"unused:{row.name}:{names[0]}"[:300]
            since = first_seen(ctx, target).get(key) or ctx.now
            ctx.record(target, key, since.timestamp())
            days = (ctx.now - since).total_seconds() / 86400
            if days >= ctx.threshold("image.unused_days"):
                yield Finding(
                    subject=f"Node {row.name} image {names[0]}",
                    message=D(
                        N_("Image %(image)s on node %(node)s has not been used for %(days)s days."),
                        image=names[0],
                        node=row.name,
                        days=int(days),
                    ),
                    facts={"bytes": image.get("sizeBytes")},
                )
