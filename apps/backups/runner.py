"""The body of a backup Job (``tasks.take_backup``): one etcd snapshot or one dump of Kubemate's own database,
from the source to a good object on the plan's storage target, then the plan's retention.

A backup is good only when every step passed: taken, checked (etcd: ``etcdutl snapshot status``; database:
``pg_restore --list``), sealed (``seal.py``: compressed and encrypted with the key set), uploaded whole and read back
(``s3.upload``). A failure at any step marks the row Failed with the sentence, deletes whatever object the upload
may have left (best effort: a multipart upload that never completed is not listed by S3 anyway) and keeps nothing
on disk: the working folder is private and removed. Retention then runs only after a success, so a failing
schedule never deletes the last good backups.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from apps.backups import database, etcd, progress, s3, seal
from apps.backups.models import Backup, EtcdAccess, Kind, Plan
from apps.core import audit
from apps.core.deferred import N_, Failure, fit, in_installation_language, sentence_of
from apps.core.deferred import text as D
from apps.core.jobs import JobRecorder

logger = logging.getLogger(__name__)


class BackupFailed(Failure):
    """A backup step failed; the sentence says which and why."""


def workdir() -> Path:
    root = Path(settings.KUBEMATE_BACKUP_WORKDIR)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Path(tempfile.mkdtemp(prefix="backup-", dir=root))


def stamp(when=None) -> str:
    return (when or timezone.now()).strftime("%Y%m%dT%H%M%SZ")


def take_etcd(job: JobRecorder, backup: Backup, folder: Path) -> None:
    """Snapshot the cluster's etcd, check it, seal it and upload it."""
    found = EtcdAccess.objects.filter(cluster=backup.cluster).first()
    if found is None:
        raise BackupFailed(D(N_("Kubemate has no access to this cluster's etcd; add its endpoints first.")))
    raw = folder / "snapshot.db"
    job.progress(5, D(N_("Taking the snapshot from etcd.")))
    etcd.save(etcd.access_for(found), raw)
    status = etcd.status(raw)
    job.progress(
        35,
        D(
            N_("Snapshot taken: revision %(revision)s, %(keys)s keys, %(size)s bytes."),
            revision=status.revision,
            keys=status.total_keys,
            size=status.total_size,
        ),
    )
    sealed = folder / "snapshot.db.gz.sealed"
    seal.seal(raw, sealed, compress=True)
    raw.unlink()
    key = backup.target.key("etcd", backup.cluster.name, f"{backup.name}.db.gz.sealed")
    Backup.objects.filter(pk=backup.pk).update(
        key=key, revision=status.revision, etcd_hash=status.hash, total_keys=status.total_keys
    )
    backup.key = key
    job.progress(45, D(N_("Uploading %(size)s bytes to %(target)s."), size=sealed.stat().st_size, target=backup.target))
    size, sha = s3.upload(
        s3.access_for(backup.target),
        key,
        sealed,
        on_progress=progress.upload_progress(job, 45, 90, sealed.stat().st_size),
    )
    Backup.objects.filter(pk=backup.pk).update(
        size_bytes=size,
        sha256=sha,
        detail={"etcd_version": status.version, "snapshot_bytes": status.total_size},
    )


BODIES = {Kind.ETCD: take_etcd, Kind.DATABASE: database.take}


def execute(job: JobRecorder, backup_id: int) -> None:
    backup = Backup.objects.select_related("plan", "target", "cluster", "actor").get(pk=backup_id)
    folder = workdir()
    try:
        BODIES[backup.kind](job, backup, folder)
    except Exception as exc:
        backup.refresh_from_db()
        fail(backup, sentence_of(exc))
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    finish(backup)
    job.progress(95, D(N_("Backup stored; applying the plan's retention.")))
    if backup.plan_id is not None:
        apply_retention(backup.plan)


def finish(backup: Backup) -> None:
    now = timezone.now()
    Backup.objects.filter(pk=backup.pk).update(status=Backup.Status.SUCCEEDED, finished_at=now, message="")
    backup.refresh_from_db()
    audit.record(
        actor=backup.actor,
        action="backups.backup.succeeded",
        cluster=backup.cluster.name if backup.cluster else "",
        kind="Backup",
        name=backup.name,
        detail={"kind": backup.kind, "key": backup.key, "size": backup.size_bytes, "sha256": backup.sha256},
        reason="",
    )


def fail(backup: Backup, sentence: str) -> None:
    """Mark ``backup`` Failed and remove whatever object its upload may have left."""
    if backup.key and backup.target_id is not None:
        try:
            s3.delete(s3.access_for(backup.target), backup.key)
        except Failure:  # the storage is away: an upload it never completed is not listed as an object
            logger.warning("failed backup's object not removed", extra={"backup": backup.pk})
    Backup.objects.filter(pk=backup.pk, status=Backup.Status.RUNNING).update(
        status=Backup.Status.FAILED, finished_at=timezone.now(), message=fit(sentence, 500)
    )
    audit.record(
        actor=backup.actor,
        action="backups.backup.failed",
        result="failure",
        cluster=backup.cluster.name if backup.cluster else "",
        kind="Backup",
        name=backup.name,
        detail={"kind": backup.kind, "reason": in_installation_language(sentence)[:400]},
        reason="",
    )


def apply_retention(plan: Plan) -> list[Backup]:
    """Delete the plan's good backups beyond its count, and those older than its days; the newest good backup is
    always kept. Returns the backups removed."""
    good = list(Backup.objects.filter(plan=plan, status=Backup.Status.SUCCEEDED, removed_at__isnull=True))
    if not good:
        return []
    cutoff = timezone.now() - timedelta(days=plan.keep_days)
    expired = [b for i, b in enumerate(good) if i > 0 and (i >= plan.keep_count or b.started_at < cutoff)]
    removed = []
    for backup in expired:
        if backup.target_id is None or not backup.key:
            continue
        try:
            s3.delete(s3.access_for(backup.target), backup.key)
        except Failure as exc:
            logger.warning("retention could not delete", extra={"backup": backup.pk, "error": str(exc)[:200]})
            continue
        Backup.objects.filter(pk=backup.pk).update(removed_at=timezone.now())
        audit.record(
            actor=None,
            actor_name="system",
            action="backups.backup.expired",
            cluster=backup.cluster.name if backup.cluster else "",
            kind="Backup",
            name=backup.name,
            detail={"plan": plan.name, "key": backup.key, "keep_count": plan.keep_count, "keep_days": plan.keep_days},
            reason="",
        )
        removed.append(backup)
    return removed
