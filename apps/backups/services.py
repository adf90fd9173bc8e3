"""Every change in backups, as a person, in one transaction, with one audit event: storage targets, etcd access,
plans (their schedules), backups taken now, and what beat starts. Velero's objects: ``velero/services.py``. Views
call these; tasks only schedule them."""

from __future__ import annotations

import secrets

from cryptography import x509
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.accounts.capabilities import BACKUPS_RUN, BACKUPS_SCHEDULE
from apps.accounts.tasks import reconcile_cluster
from apps.backups import access, etcd, runner, s3, tasks
from apps.backups.models import Backup, EtcdAccess, Kind, Plan, Target
from apps.clusters.values import is_dns_label
from apps.core import audit, crypto
from apps.core import cron as cron_fields
from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D
from apps.core.jobs import JobRecorder, start_job
from apps.core.models import Job


class Refused(Failure):
    """The change is refused; the message says why and what to do."""


def _who(actor) -> str:
    return actor.get_username() if actor is not None else D(N_("nobody"))


def _require_admin(actor) -> None:
    if actor is None or not access.is_admin(actor):
        raise Refused(D(N_("%(user)s may not manage storage targets or Kubemate's own backups."), user=_who(actor)))


# Storage targets --------------------------------------------------------------------------------------------------


def save_target(*, actor, target: Target, access_key: str = "", secret_key: str = "", request=None) -> Target:
    """Create or change a target after a probe object was written, read and deleted with the keys given (or the
    stored ones, when left empty on a change). Keys are stored encrypted and never shown again."""
    _require_admin(actor)
    creating = target.pk is None
    if access_key:
        target.access_key_encrypted = crypto.encrypt(access_key)
    if secret_key:
        target.secret_key_encrypted = crypto.encrypt(secret_key)
    if not target.access_key_encrypted or not target.secret_key_encrypted:
        raise Refused(D(N_("Give the access key and the secret key.")))
    s3.check(s3.access_for(target))
    target.last_checked_at = timezone.now()
    target.last_error = ""
    with transaction.atomic():
        if creating:
            target.created_by = actor
        target.save()
        audit.record(
            actor=actor,
            action="backups.target.create" if creating else "backups.target.update",
            kind="StorageTarget",
            name=target.name,
            detail={
                "endpoint": target.endpoint,
                "bucket": target.bucket,
                "prefix": target.prefix,
                "keys_changed": bool(access_key or secret_key),
            },
            request=request,
        )
    refresh_usage(target)
    return target


def delete_target(*, actor, target: Target, request=None) -> None:
    _require_admin(actor)
    if target.plans.exists():
        raise Refused(D(N_("Plans still write to %(name)s; move or delete them first."), name=target.name))
    with transaction.atomic():
        audit.record(
            actor=actor,
            action="backups.target.delete",
            kind="StorageTarget",
            name=target.name,
            detail={"endpoint": target.endpoint, "bucket": target.bucket},
            request=request,
        )
        target.delete()


def check_target(target: Target) -> str:
    """Probe ``target`` again and count what it holds; the error sentence, or "" when it works."""
    try:
        s3.check(s3.access_for(target))
    except Failure as exc:
        Target.objects.filter(pk=target.pk).update(last_checked_at=timezone.now(), last_error=str(exc)[:500])
        return str(exc)
    Target.objects.filter(pk=target.pk).update(last_checked_at=timezone.now(), last_error="")
    refresh_usage(target)
    return ""


def refresh_usage(target: Target) -> None:
    """Count the bytes and objects under the target's folder (beat does it hourly; saving a target does it once)."""
    try:
        used, count = s3.usage(s3.access_for(target), target.key() + "/" if target.prefix else "")
    except Failure as exc:
        Target.objects.filter(pk=target.pk).update(last_error=str(exc)[:500])
        return
    Target.objects.filter(pk=target.pk).update(used_bytes=used, object_count=count, counted_at=timezone.now())


# etcd access ------------------------------------------------------------------------------------------------------


def save_etcd_access(
    *, actor, cluster, endpoints: list[str], ca_pem: str = "", cert_pem: str = "", key_pem: str = "", request=None
) -> EtcdAccess:
    """Give Kubemate access to ``cluster``'s etcd after ``etcdctl endpoint status`` answered with it. An empty
    certificate or key on a change keeps the stored one."""
    _require_admin(actor)
    found = EtcdAccess.objects.filter(cluster=cluster).first() or EtcdAccess(cluster=cluster)
    found.endpoints = endpoints
    found.ca_pem = ca_pem
    if cert_pem:
        found.cert_encrypted = crypto.encrypt(cert_pem)
        found.cert_subject, found.cert_expires_at = _certificate_facts(cert_pem)
    if key_pem:
        found.key_encrypted = crypto.encrypt(key_pem)
    etcd.member_status(etcd.access_for(found))
    found.last_checked_at = timezone.now()
    found.last_error = ""
    found.updated_by = actor
    with transaction.atomic():
        found.save()
        audit.record(
            actor=actor,
            action="backups.etcd_access.save",
            cluster=cluster.name,
            kind="EtcdAccess",
            name=cluster.name,
            detail={"endpoints": endpoints, "certificate": found.cert_subject, "key_changed": bool(key_pem)},
            request=request,
        )
    return found


def _certificate_facts(cert_pem: str):
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError:
        raise Refused(D(N_("The client certificate is not a PEM certificate."))) from None
    return cert.subject.rfc4514_string()[:300], cert.not_valid_after_utc


# Plans ------------------------------------------------------------------------------------------------------------


def save_plan(*, actor, plan: Plan, request=None) -> Plan:
    """Create or change an etcd or database plan and its beat entry (run as ``actor`` from now on). Velero plans go
    through ``velero.services.save_plan``."""
    if plan.kind == Kind.VELERO:
        raise Refused(D(N_("Velero schedules are saved with Velero.")))
    if not access.may_plan(actor, BACKUPS_SCHEDULE, plan):
        raise Refused(D(N_("%(user)s may not schedule these backups."), user=_who(actor)))
    if not is_dns_label(plan.name or ""):
        raise Refused(D(N_("A plan's name is lower-case letters, digits and dashes.")))
    if plan.cron:
        cron_fields.parse(plan.cron)  # BadCron: a sentence
    creating = plan.pk is None
    with transaction.atomic():
        plan.created_by = actor  # a schedule runs as the last person who set it
        plan.save()
        sync_schedule(plan)
        audit.record(
            actor=actor,
            action="backups.plan.create" if creating else "backups.plan.update",
            cluster=plan.cluster.name if plan.cluster else "",
            kind="BackupPlan",
            name=plan.name,
            detail=plan_detail(plan),
            request=request,
        )
    return plan


def plan_detail(plan: Plan) -> dict:
    return {
        "kind": plan.kind,
        "target": plan.target.name if plan.target else "",
        "cron": plan.cron,
        "enabled": plan.enabled,
        "keep_count": plan.keep_count,
        "keep_days": plan.keep_days,
        "rpo_hours": plan.rpo_hours,
        "namespaces": list(plan.namespaces),
        "label_selector": plan.label_selector,
        "snapshot_volumes": plan.snapshot_volumes,
    }


def sync_schedule(plan: Plan) -> None:
    entry = PeriodicTask.objects.filter(name=plan.beat_name).first()
    if not plan.cron:
        if entry is not None:
            entry.delete()
        return
    cron_fields.sync_entry(
        entry=entry,
        name=plan.beat_name,
        task="backups.run_scheduled",
        args=[plan.pk],
        cron=plan.cron,
        tz=settings.TIME_ZONE,
        enabled=plan.enabled,
        description=f"backup plan {plan.name}",
    )


def delete_plan(*, actor, plan: Plan, request=None) -> None:
    """Delete an etcd or database plan and its schedule; the backups it took stay on the target (listed, with no
    plan), until a person deletes them there."""
    if not access.may_plan(actor, BACKUPS_SCHEDULE, plan):
        raise Refused(D(N_("%(user)s may not schedule these backups."), user=_who(actor)))
    with transaction.atomic():
        PeriodicTask.objects.filter(name=plan.beat_name).delete()
        audit.record(
            actor=actor,
            action="backups.plan.delete",
            cluster=plan.cluster.name if plan.cluster else "",
            kind="BackupPlan",
            name=plan.name,
            detail=plan_detail(plan),
            request=request,
        )
        plan.delete()


# Backups ----------------------------------------------------------------------------------------------------------


def _new_backup(actor, plan: Plan) -> Backup:
    if plan.kind == Kind.VELERO:
        raise Refused(D(N_("Velero backups are started with Velero.")))
    if not access.may_plan(actor, BACKUPS_RUN, plan):
        raise Refused(D(N_("%(user)s may not run backups of plan %(name)s."), user=_who(actor), name=plan.name))
    if plan.target is None:
        raise Refused(D(N_("Plan %(name)s has no storage target."), name=plan.name))
    if Backup.objects.filter(plan=plan, status=Backup.Status.RUNNING).exists():
        raise Refused(D(N_("A backup of plan %(name)s is running; wait for it to end."), name=plan.name))
    # Unique even for two backups in one second: the name is the object's key.
    name = f"{plan.cluster.name if plan.cluster else 'kubemate'}-{plan.name}-{runner.stamp()}-{secrets.token_hex(3)}"
    return Backup(kind=plan.kind, plan=plan, cluster=plan.cluster, target=plan.target, name=name, actor=actor)


def _audit_start(actor, backup: Backup, request) -> None:
    audit.record(
        actor=actor,
        action="backups.backup.start",
        cluster=backup.cluster.name if backup.cluster else "",
        kind="Backup",
        name=backup.name,
        detail={"kind": backup.kind, "plan": backup.plan.name if backup.plan else "", "target": str(backup.target)},
        request=request,
    )


def start_backup(*, actor, plan: Plan, request=None) -> Backup:
    """Queue a backup of ``plan`` as ``actor`` (a Job a worker runs)."""
    backup = _new_backup(actor, plan)
    with transaction.atomic():
        backup.save()
        backup.job = start_job(
            task=tasks.take_backup,
            title=D(N_("Back up %(plan)s"), plan=plan.name),
            actor=actor,
            target=backup.name,
            args=(backup.pk,),
        )
        backup.save(update_fields=["job"])
        _audit_start(actor, backup, request)
    return backup


def take_backup_now(*, actor, plan: Plan) -> Backup:
    """Take a backup of ``plan`` in this process (the ``backup_database`` command; a runbook's step). Raises the
    failure's sentence after the row is marked Failed."""
    backup = _new_backup(actor, plan)
    with transaction.atomic():
        job = Job.objects.create(
            kind=tasks.take_backup.name,
            title=D(N_("Back up %(plan)s"), plan=plan.name),
            actor=actor,
            target=backup.name,
            status=Job.Status.RUNNING,
            started_at=timezone.now(),
        )
        backup.job = job
        backup.save()
        _audit_start(actor, backup, None)
    try:
        runner.execute(JobRecorder(job), backup.pk)
    except Exception as exc:
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.FAILED, finished_at=timezone.now(), message=str(exc)[:500]
        )
        raise
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, progress=100, finished_at=timezone.now())
    backup.refresh_from_db()
    return backup


def run_scheduled(plan_id: int) -> Backup | None:
    """What beat starts for a plan's schedule: a backup as the person who set it; refused (audited) when they may
    no longer run it or a backup of the plan is still running."""
    plan = Plan.objects.select_related("cluster", "target", "created_by").filter(pk=plan_id, enabled=True).first()
    if plan is None or plan.kind == Kind.VELERO:
        return None
    try:
        return start_backup(actor=plan.created_by, plan=plan)
    except Refused as exc:
        audit.record(
            actor=plan.created_by,
            action="backups.backup.refused",
            result=audit.AuditEvent.Result.DENIED,
            cluster=plan.cluster.name if plan.cluster else "",
            kind="BackupPlan",
            name=plan.name,
            detail={"trigger": "schedule", "reason": str(exc)},
        )
        return None


def refresh_all_usage() -> None:
    for target in Target.objects.all():
        refresh_usage(target)


# Velero's place in a cluster ---------------------------------------------------------------------------------------


def set_velero_namespace(*, actor, cluster, namespace: str, request=None) -> None:
    """Name the namespace Velero runs in (empty: Velero is not used in this cluster). The RBAC projection then binds
    the backup capabilities of project people there (the next reconcile)."""
    _require_admin(actor)
    namespace = namespace.strip()
    if namespace and not is_dns_label(namespace):
        raise Refused(D(N_("%(name)s is not a namespace name."), name=namespace[:70]))
    before = cluster.velero_namespace
    with transaction.atomic():
        type(cluster).objects.filter(pk=cluster.pk).update(velero_namespace=namespace)
        cluster.velero_namespace = namespace
        audit.record(
            actor=actor,
            action="backups.velero_namespace.set",
            cluster=cluster.name,
            kind="Cluster",
            name=cluster.name,
            detail={"before": before, "after": namespace},
            request=request,
        )
        transaction.on_commit(lambda: reconcile_cluster.delay(cluster.pk), robust=True)
