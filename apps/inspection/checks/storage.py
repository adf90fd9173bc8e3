"""Storage, backups and images: volume claims that wait or fill up, volumes left behind, the age of the last etcd
backup, registries the workloads pull from, images left on nodes that nothing runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from apps.backups import freshness
from apps.backups.models import Kind as BackupKind
from apps.backups.models import Plan as BackupPlan
from apps.clusters.models import Cluster
from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.inspection import registry
from apps.inspection.checks.base import CannotCheck, Domain, Finding, Severity, check, object_check
from apps.inspection.checks.security import containers_of, templates
from apps.inspection.models import Measurement
from apps.observability import prometheus

CLUSTER = Domain.CLUSTER
MAX_REGISTRIES = 20
MAX_NODES_NAMED = 5
BACKUP_LABEL = "kubemate.io/backup"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
FULLNESS = (
    "max by (namespace, persistentvolumeclaim) "
    "(kubelet_volume_stats_used_bytes / kubelet_volume_stats_capacity_bytes) * 100"
)
IMAGES_ANCHOR = "images:checked"
UNUSED = "unused:"


# Volumes --------------------------------------------------------------------------------------------------------


def _binding_modes(ctx, cluster: Cluster) -> tuple[dict[str, str], str]:
    """Each StorageClass's volumeBindingMode, and the name of the default class."""
    modes, default = {}, ""
    for row in ctx.rows(cluster, "StorageClass"):
        modes[row.name] = str(row.object.get("volumeBindingMode") or "Immediate")
        annotations = (row.object.get("metadata") or {}).get("annotations") or {}
        if annotations.get("storageclass.kubernetes.io/is-default-class") == "true":
            default = row.name
    return modes, default


@check(
    "cluster.pvc.pending",
    CLUSTER,
    Severity.WARNING,
    _("Volume claims are bound"),
    _("A claim that stays Pending holds its pods in Pending too: the application does not start."),
    _("Check the claim's events: a missing StorageClass, no volume of that size, or a provisioner that fails."),
)
def pvc_pending(ctx, cluster: Cluster) -> Iterator[Finding]:
    """A claim Pending for longer than ``pvc.pending_minutes``. A claim of a WaitForFirstConsumer class that no pod
    has been scheduled with yet (no selected-node annotation) is waiting as designed, not stuck."""
    modes, default = _binding_modes(ctx, cluster)
    after = ctx.threshold("pvc.pending_minutes", 10)
    for row in ctx.rows(cluster, "PersistentVolumeClaim"):
        if ((row.object.get("status") or {}).get("phase") or "") != "Pending" or row.created is None:
            continue
        minutes = (ctx.now - row.created).total_seconds() / 60
        storage_class = (row.object.get("spec") or {}).get("storageClassName")
        storage_class = default if storage_class is None else storage_class
        annotations = (row.object.get("metadata") or {}).get("annotations") or {}
        waits = modes.get(storage_class) == "WaitForFirstConsumer" and SELECTED_NODE not in annotations
        if minutes < after or waits:
            continue
        if storage_class and storage_class not in modes:
            sentence = N_(
                "Claim %(name)s has been Pending for %(minutes)s minutes: its storage class %(class)s does not exist."
            )
        else:
            sentence = N_("Claim %(name)s has been Pending for %(minutes)s minutes (storage class %(class)s).")
        yield Finding(
            subject=row.key,
            namespace=row.namespace,
            message=D(sentence, name=row.name, minutes=int(minutes), **{"class": storage_class or "—"}),
            facts={"minutes": int(minutes), "storage_class": storage_class or ""},
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
        spec = row.object.get("spec") or {}
        claim = spec.get("claimRef") or {}
        yield Finding(
            subject=row.key,
            message=D(
                N_("Volume %(name)s is %(phase)s (it was claimed by %(claim)s)."),
                name=row.name,
                phase=phase,
                claim=f"{claim.get('namespace', '')}/{claim.get('name', '')}".strip("/") or "—",
            ),
            facts={"phase": phase, "capacity": str((spec.get("capacity") or {}).get("storage") or "")},
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
    """Used / capacity of each mounted claim from the kubelets' volume statistics in Prometheus. Without Prometheus,
    or when it holds no such statistics (the kubelets are not scraped, or no claim is mounted), nothing was
    measured: not checked."""
    try:
        samples = prometheus.query(ctx.prometheus(cluster), FULLNESS)
    except prometheus.PrometheusError as exc:
        raise CannotCheck(exc.stored) from None
    if not samples:
        raise CannotCheck(
            D(
                N_(
                    "The Prometheus of cluster %(cluster)s holds no kubelet volume statistics "
                    "(kubelet_volume_stats_*): the kubelets are not scraped, or no claim is mounted."
                ),
                cluster=cluster.name,
            )
        )
    limit = ctx.threshold("pvc.full_percent")
    for sample in samples:
        namespace = str(sample.labels.get("namespace") or "")
        claim = str(sample.labels.get("persistentvolumeclaim") or "")
        if claim and sample.value >= limit:
            yield Finding(
                subject=f"PersistentVolumeClaim {namespace}/{claim}",
                namespace=namespace,
                message=D(
                    N_("Claim %(name)s is %(percent)s%% full (limit %(limit)s%%)."),
                    name=claim,
                    percent=round(sample.value, 1),
                    limit=int(limit) if limit == int(limit) else limit,
                ),
                facts={"percent": round(sample.value, 1)},
            )


# Backups --------------------------------------------------------------------------------------------------------


def _when(value) -> datetime | None:
    return parse_datetime(str(value or "")[:40])


def _succeeded_at(job: dict) -> datetime | None:
    status = job.get("status") or {}
    return _when(status.get("completionTime")) if status.get("succeeded") else None


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
    """Kubemate's own etcd plans, when the cluster has any: the newest good snapshot of any of them, within
    ``etcd.backup_max_hours``. Else the backup is a CronJob labelled ``kubemate.io/backup=etcd`` or named like
    ``etcd-backup``. Its last success is the
    newer of the CronJob's ``status.lastSuccessfulTime`` and the completion of its newest successful Job still in
    the inventory. A backup that has never succeeded is a finding once its CronJob is older than
    ``etcd.backup_max_hours`` (a CronJob made this morning has not had its first night yet)."""
    plans = list(BackupPlan.objects.filter(cluster=cluster, kind=BackupKind.ETCD, enabled=True))
    if plans:
        yield from _kubemate_etcd_backups(ctx, cluster, plans)
        return
    cronjobs: dict[tuple[str, str], datetime | None] = {}
    created: dict[tuple[str, str], datetime | None] = {}
    for row in ctx.rows(cluster, "CronJob"):
        if (row.labels or {}).get(BACKUP_LABEL) == "etcd" or "etcd-backup" in row.name:
            cronjobs[(row.namespace, row.name)] = _when((row.object.get("status") or {}).get("lastSuccessfulTime"))
            created[(row.namespace, row.name)] = row.created
    if not cronjobs:
        yield Finding(
            subject="etcd", message=D(N_("No etcd backup is scheduled in cluster %(cluster)s."), cluster=cluster.name)
        )
        return
    newest = max((t for t in cronjobs.values() if t), default=None)
    for row in ctx.rows(cluster, "Job"):
        refs = (row.object.get("metadata") or {}).get("ownerReferences") or []
        owner = next((o for o in refs if (o or {}).get("kind") == "CronJob"), None)
        if owner and (row.namespace, owner.get("name")) in cronjobs:
            done = _succeeded_at(row.object)
            if done and (newest is None or done > newest):
                newest = done
    limit = ctx.threshold("etcd.backup_max_hours")
    names = ", ".join(f"{ns}/{name}" for ns, name in sorted(cronjobs))[:300]
    if newest is None:
        oldest = min((t for t in created.values() if t), default=ctx.now)
        hours = (ctx.now - oldest).total_seconds() / 3600
        if hours > limit:
            yield Finding(
                subject="etcd",
                message=D(
                    N_("The etcd backup (%(cronjobs)s) has never succeeded; it was scheduled %(hours)s hours ago."),
                    cronjobs=names,
                    hours=int(hours),
                ),
                facts={"cronjobs": names, "hours": round(hours, 1)},
            )
        return
    hours = (ctx.now - newest).total_seconds() / 3600
    if hours > limit:
        yield Finding(
            subject="etcd",
            message=D(
                N_("The last etcd backup (%(cronjobs)s) succeeded %(hours)s hours ago (at most %(limit)s)."),
                cronjobs=names,
                hours=int(hours),
                limit=int(limit),
            ),
            facts={"cronjobs": names, "hours": round(hours, 1), "last": newest.isoformat()},
        )


def _kubemate_etcd_backups(ctx, cluster: Cluster, plans: list[BackupPlan]) -> Iterator[Finding]:
    limit = ctx.threshold("etcd.backup_max_hours")
    found = freshness.of_plans(plans)
    newest = max((f.last_good for f in found if f.last_good), default=None)
    names = ", ".join(sorted(p.name for p in plans))[:300]
    if newest is None:
        yield Finding(
            subject="etcd",
            message=D(N_("No etcd snapshot of plan %(plans)s has succeeded yet."), plans=names),
            facts={"plans": names},
        )
        return
    hours = (ctx.now - newest).total_seconds() / 3600
    if hours > limit:
        yield Finding(
            subject="etcd",
            message=D(
                N_("The last etcd snapshot (plan %(plans)s) succeeded %(hours)s hours ago (at most %(limit)s)."),
                plans=names,
                hours=int(hours),
                limit=int(limit),
            ),
            facts={"plans": names, "hours": round(hours, 1), "last": newest.isoformat()},
        )


@check(
    "cluster.backups.fresh",
    CLUSTER,
    Severity.CRITICAL,
    _("Backups are within their recovery point"),
    _(
        "A backup older than its plan's recovery point objective means more data is lost than the bank agreed to, "
        "should the cluster or an application have to be restored now."
    ),
    _(
        "Open the cluster's backups page: run the plan now, and read why its last runs failed (the storage target, "
        "etcd access or Velero's storage location)."
    ),
)
def backups_fresh(ctx, cluster: Cluster) -> Iterator[Finding]:
    """Each enabled backup plan of the cluster (etcd snapshots, Velero schedules) has a good backup no older than
    its recovery point objective. A cluster without plans is not checked (nothing was promised); Velero's backups
    that cannot be read make that plan "not checked" rather than stale."""
    plans = list(BackupPlan.objects.filter(cluster=cluster, enabled=True).select_related("cluster"))
    if not plans:
        raise CannotCheck(D(N_("Cluster %(cluster)s has no backup plan in Kubemate."), cluster=cluster.name))
    results = freshness.of_plans(plans)
    unknown = [f for f in results if f.unknown]
    if len(unknown) == len(results):
        raise CannotCheck(D(N_("Velero's backups cannot be read: %(reason)s"), reason=unknown[0].unknown))
    for fresh in results:
        if fresh.unknown or not fresh.stale:
            continue
        plan = fresh.plan
        if fresh.last_good is None:
            message = D(
                N_("Backup plan %(plan)s has no good backup yet (recovery point %(rpo)s hours)."),
                plan=plan.name,
                rpo=plan.rpo_hours,
            )
        else:
            message = D(
                N_("The newest good backup of plan %(plan)s is %(hours)s hours old (recovery point %(rpo)s hours)."),
                plan=plan.name,
                hours=int(fresh.age_hours or 0),
                rpo=plan.rpo_hours,
            )
        yield Finding(
            subject=f"plan {plan.name}",
            message=message,
            namespace=plan.namespaces[0] if plan.kind == BackupKind.VELERO and len(plan.namespaces) == 1 else "",
            facts={
                "plan": plan.name,
                "kind": plan.kind,
                "rpo_hours": plan.rpo_hours,
                "age_hours": round(fresh.age_hours, 1) if fresh.age_hours is not None else None,
                "failed_since": fresh.failed_since,
            },
        )


# Registries -----------------------------------------------------------------------------------------------------


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
    """Each registry host the workloads' images name (the most used first, at most twenty) is asked for its
    registry API from Kubemate's server (``apps.inspection.registry``): the nodes pull from the same hosts, so one
    that does not answer Kubemate is likely not to answer them either. A node's own loopback registry is not
    asked."""
    counts: dict[str, int] = {}
    for _subject, _namespace, spec in templates(ctx, cluster):
        for container in containers_of(spec):
            host = registry.registry_of(str(container.get("image") or ""))
            if registry.askable(host):
                counts[host] = counts.get(host, 0) + 1
    hosts = sorted(counts, key=lambda h: (-counts[h], h))[:MAX_REGISTRIES]
    # Asked once per run: clusters pulling from the same registry share its answer.
    known = ctx.once(("registries", cluster.allow_link_local), dict)
    known.update(registry.probe_all([h for h in hosts if h not in known], allow_link_local=cluster.allow_link_local))
    for host in hosts:
        if known[host]:
            yield Finding(subject=f"registry {host}", message=known[host], facts={"containers": counts[host]})


# Images on nodes ------------------------------------------------------------------------------------------------


def _unused_before(target: str) -> dict[str, float]:
    """Since when each image was unused, as the last run of this check on ``target`` left it (two queries)."""
    last = (
        Measurement.objects.filter(target=target, key=IMAGES_ANCHOR)
        .order_by("-measured_at")
        .values_list("run_id", flat=True)
        .first()
    )
    if last is None:
        return {}
    rows = Measurement.objects.filter(run_id=last, target=target, key__startswith=UNUSED)
    return dict(rows.values_list("key", "value")[:100_000])


def _used_images(ctx, cluster: Cluster) -> set[str]:
    used: set[str] = set()
    for row in ctx.rows(cluster, "Pod"):
        for container in containers_of(row.object.get("spec") or {}):
            used |= registry.full_names(str(container.get("image") or ""))
        status = row.object.get("status") or {}
        for kind in ("initContainerStatuses", "containerStatuses"):
            for seen in status.get(kind) or []:
                used |= registry.full_names(str((seen or {}).get("image") or ""))
                used |= registry.full_names(str((seen or {}).get("imageID") or ""))
    return used


def _is_pause(name: str) -> bool:
    return name.split("@", 1)[0].rsplit(":", 1)[0].rsplit("/", 1)[-1] == "pause"


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
    """The rule, from what the inventory gives: an image a node holds (Node ``status.images``: its names, its size)
    is in use while any pod of the cluster, running or finished, names it: its spec's image or the image and image
    ID the kubelet reports in its status, compared in full (``busybox:1.36`` is
    ``docker.io/library/busybox:1.36``). The sandbox image (``…/pause``) runs beside every pod without a pod naming
    it and is never counted.

    The inventory does not say when an image was last used, so Kubemate remembers it: each run keeps, per unused
    image, since when it has been unused (a measurement, carried from the previous run of this check; an image that
    was in use then starts again from now). An image unused for ``image.unused_days`` is one finding naming the
    nodes that keep it and the space it takes there. The first run therefore finds nothing: it starts the clock."""
    used = _used_images(ctx, cluster)
    unused: dict[str, list] = {}  # name -> [nodes, bytes, node names]
    for row in ctx.rows(cluster, "Node"):
        for image in (row.object.get("status") or {}).get("images") or []:
            listed = [str(n)[: registry.MAX_REFERENCE] for n in (image or {}).get("names") or []][:16]
            full = set().union(*(registry.full_names(n) for n in listed)) if listed else set()
            if not listed or full & used or any(_is_pause(n) for n in listed):
                continue
            tagged = sorted(n for n in listed if "@" not in n)
            name = (tagged or sorted(listed))[0]
            entry = unused.setdefault(name, [0, 0, []])
            entry[0] += 1
            entry[1] += int((image or {}).get("sizeBytes") or 0)
            if len(entry[2]) < MAX_NODES_NAMED:
                entry[2].append(row.name)
    target = f"cluster:{cluster.name}"
    before = _unused_before(target)
    ctx.record(target, IMAGES_ANCHOR, len(unused))
    limit = ctx.threshold("image.unused_days")
    for name, (nodes, size, named) in sorted(unused.items()):
        key = f"{UNUSED}{name}"[:300]
        since = before.get(key, ctx.now.timestamp())
        ctx.record(target, key, since)
        days = (ctx.now.timestamp() - since) / 86400
        if days < limit:
            continue
        shown = ", ".join(named) + (" …" if nodes > len(named) else "")
        yield Finding(
            subject=f"image {name}",
            message=D(
                N_(
                    "Image %(image)s has not been used for %(days)s days; it takes %(mib)s MiB on %(nodes)s (nodes "
                    "holding it: %(count)s)."
                ),
                image=name,
                days=int(days),
                count=nodes,
                nodes=shown,
                mib=round(size / 2**20),
            ),
            facts={"nodes": nodes, "bytes": size, "days": int(days)},
        )
