"""The body of the Job that follows a Velero Backup or Restore started from the console to its end: its phase and
progress into the Job, its end into the row, and a restore's end into the audit log with what Velero reported it
did (its warnings and errors, from the restore's results in the storage location)."""

from __future__ import annotations

import time

from django.conf import settings
from django.utils import timezone

from apps.backups.models import Backup, Restore
from apps.backups.velero import k8s
from apps.clusters import kube
from apps.core import audit
from apps.core.deferred import N_, Failure, fit, sentence_of
from apps.core.deferred import text as D
from apps.core.jobs import JobCancelled, JobRecorder

TIMEOUT = 3 * 3600


class VeleroFailed(Failure):
    """Velero ended the backup or restore without completing it."""


def follow(job: JobRecorder, kind: str, object_id: int) -> None:
    model = Backup if kind == "backup" else Restore
    row = model.objects.select_related("cluster", "actor").get(pk=object_id)
    try:
        if kind == "backup":
            _follow_backup(job, row)
        else:
            _follow_restore(job, row)
    except JobCancelled:
        _stop_following(model, row, D(N_("Kubemate stopped following it; Velero may still finish it.")))
        raise
    except (Failure, kube.KubeError) as exc:
        _stop_following(model, row, sentence_of(exc))
        raise


def _stop_following(model, row, sentence: str) -> None:
    """The row ends Failed with ``sentence`` unless it ended already (a Velero failure wrote its own words)."""
    model.objects.filter(pk=row.pk, status=model.Status.RUNNING).update(
        status=model.Status.FAILED, finished_at=timezone.now(), message=fit(sentence, 500)
    )


def _wait(job: JobRecorder, row, kind: str, view_of):
    namespace = row.cluster.velero_namespace
    deadline = time.monotonic() + TIMEOUT
    last = ""
    while time.monotonic() < deadline:
        with kube.client(row.cluster, as_user=row.actor) as k:
            found = k.read(kind, namespace, row.name)
        if found is None:
            raise VeleroFailed(D(N_("Velero's %(kind)s %(name)s is gone."), kind=kind, name=row.name))
        view = view_of(found)
        if view.phase != last or view.items_done:
            last = view.phase
            percent = 5 + int(85 * view.items_done / view.items_total) if view.items_total else 5
            job.progress(
                min(percent, 90),
                D(
                    N_("Velero: %(phase)s, %(done)s of %(total)s items."),
                    phase=view.phase,
                    done=view.items_done,
                    total=view.items_total,
                ),
            )
        if view.done:
            return view
        job.check_cancelled()
        time.sleep(settings.KUBEMATE_FOLLOW_POLL_SECONDS)
    raise VeleroFailed(
        D(N_("Velero did not finish %(name)s within %(hours)s hours."), name=row.name, hours=TIMEOUT // 3600)
    )


def _problem(view) -> str:
    reason = view.failure or "; ".join(view.validation)
    return D(
        N_("Velero ended %(name)s %(phase)s: %(reason)s (%(errors)s errors, %(warnings)s warnings)."),
        name=view.name,
        phase=view.phase,
        reason=reason or "-",
        errors=view.errors,
        warnings=view.warnings,
    )


def _follow_backup(job: JobRecorder, backup: Backup) -> None:
    view = _wait(job, backup, "Backup", k8s.backup_view)
    detail = {
        **backup.detail,
        "phase": view.phase,
        "items": view.items_done,
        "warnings": view.warnings,
        "errors": view.errors,
    }
    status = Backup.Status.SUCCEEDED if view.good else Backup.Status.FAILED
    message = "" if view.good else _problem(view)
    Backup.objects.filter(pk=backup.pk).update(
        status=status, finished_at=timezone.now(), detail=detail, message=fit(message, 500)
    )
    audit.record(
        actor=backup.actor,
        action="backups.backup.succeeded" if view.good else "backups.backup.failed",
        result="success" if view.good else "failure",
        cluster=backup.cluster.name,
        namespace=backup.cluster.velero_namespace,
        kind="Backup",
        name=backup.name,
        detail=detail,
        reason="",
    )
    if not view.good:
        raise VeleroFailed(message)


def _follow_restore(job: JobRecorder, row: Restore) -> None:
    view = _wait(job, row, "Restore", k8s.restore_view)
    results: dict = {}
    try:
        with kube.client(row.cluster, as_user=row.actor) as k:
            results = k8s.restore_results(k, row.cluster.velero_namespace, row.name)
    except (Failure, kube.KubeError):
        results = {}
    created = [f"{o['kind']} {o['to']}" for o in (row.preview or {}).get("objects", []) if not o.get("exists")]
    changed = {
        "phase": view.phase,
        "items_restored": view.items_done,
        "items_total": view.items_total,
        "created": created[:500],
        "warnings": _flatten(results.get("warnings")),
        "errors": _flatten(results.get("errors")),
    }
    status = {
        "Completed": Restore.Status.SUCCEEDED,
        "PartiallyFailed": Restore.Status.PARTIAL,
    }.get(view.phase, Restore.Status.FAILED)
    message = "" if status == Restore.Status.SUCCEEDED else _problem(view)
    Restore.objects.filter(pk=row.pk).update(
        status=status, finished_at=timezone.now(), changed=changed, message=fit(message, 500)
    )
    audit.record(
        actor=row.actor,
        action="backups.restore.finished",
        result="success" if status == Restore.Status.SUCCEEDED else "failure",
        cluster=row.cluster.name,
        namespace=row.cluster.velero_namespace,
        kind="Restore",
        name=row.name,
        detail={"backup": row.backup_name, "mapping": row.namespace_mapping, **changed},
        reason="",
    )
    if status == Restore.Status.FAILED:
        raise VeleroFailed(message)


def _flatten(section) -> list[str]:
    """Velero's results section ({"velero": [...], "cluster": [...], "namespaces": {ns: [...]}}) as lines."""
    if not isinstance(section, dict):
        return []
    lines = [f"velero: {m}" for m in section.get("velero") or []]
    lines += [f"cluster: {m}" for m in section.get("cluster") or []]
    for ns, messages in (section.get("namespaces") or {}).items():
        lines += [f"{ns}: {m}" for m in messages or []]
    return [str(line)[:300] for line in lines[:200]]
