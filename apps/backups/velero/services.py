"""Velero from the console, as the acting person: plans (Velero ``Schedule`` objects), backups run now, and
restores into the same or new namespaces after a preview of what will be created. Each change is one audit event;
a Job follows each backup and restore to its end (``follow.py``), and a restore's end is audited with what Velero
reported it did.

Velero's objects live in the cluster's Velero namespace (``Cluster.velero_namespace``), created as the person (the
RBAC projection binds their backup capabilities there); a person may name only namespaces where they hold the
capability (``access.on_namespaces``), so a project's people back up and restore their own namespaces only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from apps.accounts.capabilities import BACKUPS_RESTORE, BACKUPS_RUN, BACKUPS_SCHEDULE, BACKUPS_VIEW
from apps.backups import access, tasks
from apps.backups.models import Backup, Kind, Plan, Restore
from apps.backups.services import Refused, _who, plan_detail
from apps.backups.velero import k8s
from apps.clusters import kube
from apps.clusters.models import Cluster
from apps.clusters.values import is_dns_label
from apps.core import audit, gates
from apps.core import cron as cron_fields
from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.core.jobs import start_job

MAX_PREVIEW = 2000


def namespace_of(cluster: Cluster) -> str:
    if not cluster.velero_namespace:
        raise Refused(D(N_("Velero is not set up for cluster %(cluster)s."), cluster=cluster.name))
    return cluster.velero_namespace


def _check_namespaces(namespaces: list[str]) -> list[str]:
    cleaned = sorted({n.strip() for n in namespaces if n and n.strip()})
    for name in cleaned:
        if name != "*" and not is_dns_label(name):
            raise Refused(D(N_("%(name)s is not a namespace name."), name=name[:70]))
    return cleaned


def _stamp() -> str:
    return timezone.now().strftime("%Y%m%d%H%M%S")


def object_name(base: str) -> str:
    suffix = "-" + _stamp()
    return base[: 63 - len(suffix)].rstrip("-") + suffix


def _labels(actor, plan: Plan | None = None) -> dict:
    labels = {k8s.ACTOR_LABEL: kube.user_service_account(actor)} if actor is not None else {}
    if plan is not None:
        labels[k8s.PLAN_LABEL] = str(plan.pk)
    return labels


def visible(user, cluster: Cluster, namespaces: list[str]) -> bool:
    """Whether ``user`` sees a Velero object that names ``namespaces`` (all of them held, or the whole cluster)."""
    return access.on_namespaces(user, BACKUPS_VIEW, cluster, namespaces)


# What a person sees -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """Velero's objects in a cluster as one person may see them; ``missing`` when the cluster does not serve
    velero.io/v1."""

    missing: bool = False
    locations: list[dict] = field(default_factory=list)
    backups: list[k8s.BackupView] = field(default_factory=list)
    restores: list[k8s.RestoreView] = field(default_factory=list)


def state(*, actor, cluster: Cluster) -> State:
    """Storage locations, backups and restores, read as ``actor`` and filtered to the namespaces they may see.
    KubeError or VeleroError when the cluster cannot be read."""
    namespace = namespace_of(cluster)
    with kube.client(cluster, as_user=actor) as k:
        if not k8s.serves_velero(k):
            return State(missing=True)
        locations = k8s.locations(k, namespace)
        backups = k8s.backups(k, namespace)
        restores = k8s.restores(k, namespace)
    return State(
        locations=locations,
        backups=[b for b in backups if visible(actor, cluster, b.namespaces)],
        restores=[r for r in restores if visible(actor, cluster, [*r.namespaces, *r.mapping.values()])],
    )


def backup_of(*, actor, cluster: Cluster, name: str) -> k8s.BackupView | None:
    """Velero's backup ``name`` as ``actor`` sees it; None when it is missing or names namespaces not theirs."""
    with kube.client(cluster, as_user=actor) as k:
        found = k.read("Backup", namespace_of(cluster), name)
    view = k8s.backup_view(found) if found is not None else None
    return view if view is not None and visible(actor, cluster, view.namespaces) else None


def restore_of(*, actor, cluster: Cluster, name: str) -> k8s.RestoreView | None:
    """Velero's restore ``name`` as ``actor`` sees it; None when it is missing or touches namespaces not theirs."""
    with kube.client(cluster, as_user=actor) as k:
        found = k.read("Restore", namespace_of(cluster), name)
    view = k8s.restore_view(found) if found is not None else None
    if view is None or not visible(actor, cluster, [*view.namespaces, *view.mapping.values()]):
        return None
    return view


def log_lines(*, actor, cluster: Cluster, kind: str, name: str, max_lines: int) -> list[str]:
    """The last lines of a backup's or restore's log (``kind`` BackupLog or RestoreLog) from the storage location;
    the caller has found the object visible (``backup_of``, ``restore_of``)."""
    with kube.client(cluster, as_user=actor) as k:
        return k8s.log_text(k, namespace_of(cluster), kind, name, max_lines=max_lines)


# Plans ------------------------------------------------------------------------------------------------------------


def save_plan(*, actor, plan: Plan, ttl_hours: int | None = None, request=None) -> Plan:
    """Create or change a Velero plan: its ``Schedule`` object (created as ``actor``), then its row."""
    plan.kind = Kind.VELERO
    plan.namespaces = _check_namespaces(plan.namespaces)
    if not access.on_namespaces(actor, BACKUPS_SCHEDULE, plan.cluster, plan.namespaces):
        raise Refused(D(N_("%(user)s may not schedule backups of these namespaces."), user=_who(actor)))
    if not plan.cron:
        raise Refused(D(N_("A Velero plan needs a schedule; run a one-off backup from the backups page instead.")))
    cron_fields.parse(plan.cron)
    if not plan.name or not is_dns_label(plan.name):
        raise Refused(D(N_("A plan's name is lower-case letters, digits and dashes.")))
    namespace = namespace_of(plan.cluster)
    creating = plan.pk is None
    plan.velero_name = plan.velero_name or f"km-{plan.name}"[:63]
    ttl = ttl_hours or plan.keep_days * 24
    with transaction.atomic():
        plan.created_by = actor
        plan.save()
        template = k8s.backup_spec(
            namespaces=plan.namespaces,
            label_selector=plan.label_selector,
            ttl_hours=ttl,
            snapshot_volumes=plan.snapshot_volumes,
        )
        template["metadata"] = {"labels": {k8s.PLAN_LABEL: str(plan.pk), **k8s.MANAGED}}
        with kube.client(plan.cluster, as_user=actor) as k:
            k8s.save_schedule(
                k, namespace, plan.velero_name, plan.cron, template, _labels(actor, plan), paused=not plan.enabled
            )
        audit.record(
            actor=actor,
            action="backups.plan.create" if creating else "backups.plan.update",
            cluster=plan.cluster.name,
            namespace=namespace,
            kind="Schedule",
            name=plan.velero_name,
            detail=plan_detail(plan),
            request=request,
        )
    return plan


def delete_plan(*, actor, plan: Plan, request=None) -> None:
    if not access.on_namespaces(actor, BACKUPS_SCHEDULE, plan.cluster, plan.namespaces):
        raise Refused(D(N_("%(user)s may not schedule backups of these namespaces."), user=_who(actor)))
    namespace = namespace_of(plan.cluster)
    with transaction.atomic():
        with kube.client(plan.cluster, as_user=actor) as k:
            k8s.delete_schedule(k, namespace, plan.velero_name)
        audit.record(
            actor=actor,
            action="backups.plan.delete",
            cluster=plan.cluster.name,
            namespace=namespace,
            kind="Schedule",
            name=plan.velero_name,
            detail=plan_detail(plan),
            request=request,
        )
        plan.delete()


# Backups ----------------------------------------------------------------------------------------------------------


def run_backup(
    *,
    actor,
    cluster: Cluster,
    plan: Plan | None = None,
    namespaces: list[str] | None = None,
    label_selector: str = "",
    ttl_hours: int = 720,
    snapshot_volumes: bool = False,
    request=None,
) -> Backup:
    """A Velero Backup now, of ``plan``'s selection (as Velero's ``backup create --from-schedule``) or of the
    namespaces given; a Job follows it to its end."""
    if plan is not None:
        namespaces, label_selector = list(plan.namespaces), plan.label_selector
        ttl_hours, snapshot_volumes = plan.keep_days * 24, plan.snapshot_volumes
    namespaces = _check_namespaces(namespaces or [])
    if not access.on_namespaces(actor, BACKUPS_RUN, cluster, namespaces):
        raise Refused(D(N_("%(user)s may not back up these namespaces."), user=_who(actor)))
    namespace = namespace_of(cluster)
    name = object_name(plan.velero_name if plan is not None else "km-backup")
    spec = k8s.backup_spec(
        namespaces=namespaces, label_selector=label_selector, ttl_hours=ttl_hours, snapshot_volumes=snapshot_volumes
    )
    with transaction.atomic():
        with kube.client(cluster, as_user=actor) as k:
            k8s.create_backup(k, namespace, name, spec, _labels(actor, plan))
        backup = Backup.objects.create(
            kind=Kind.VELERO,
            plan=plan,
            cluster=cluster,
            name=name,
            actor=actor,
            detail={"namespaces": namespaces, "label_selector": label_selector, "ttl_hours": ttl_hours},
        )
        backup.job = start_job(
            task=tasks.follow_velero,
            title=D(N_("Velero backup %(name)s"), name=name),
            actor=actor,
            target=name,
            args=("backup", backup.pk),
        )
        backup.save(update_fields=["job"])
        audit.record(
            actor=actor,
            action="backups.backup.start",
            cluster=cluster.name,
            namespace=namespace,
            kind="Backup",
            name=name,
            detail={"kind": "velero", "plan": plan.name if plan else "", **backup.detail},
            request=request,
        )
    return backup


# Restores ---------------------------------------------------------------------------------------------------------


def _backup_for_restore(actor, cluster: Cluster, backup_name: str) -> k8s.BackupView:
    view = backup_of(actor=actor, cluster=cluster, name=backup_name)
    if view is None:
        raise Refused(D(N_("Velero has no backup called %(name)s."), name=backup_name))
    if view.phase not in {"Completed", "PartiallyFailed"}:
        raise Refused(
            D(
                N_("Backup %(name)s has not completed (%(phase)s); it cannot be restored."),
                name=backup_name,
                phase=view.phase,
            )
        )
    return view


def _plan_restore(actor, cluster: Cluster, view: k8s.BackupView, namespaces: list[str], mapping: dict[str, str]):
    namespaces = _check_namespaces(namespaces)
    held = [n for n in view.namespaces if n != "*"]
    if not namespaces:
        namespaces = held
    if held and not set(namespaces) <= set(held):
        raise Refused(
            D(N_("The backup does not hold namespace %(name)s."), name=", ".join(sorted(set(namespaces) - set(held))))
        )
    mapping = {k: v for k, v in (mapping or {}).items() if k and v and k != v}
    for source, dest in mapping.items():
        if source not in namespaces or not is_dns_label(dest):
            raise Refused(D(N_("%(source)s cannot be restored into %(dest)s."), source=source, dest=dest[:70]))
    touched = sorted(set(namespaces) | set(mapping.values()))
    if not access.on_namespaces(actor, BACKUPS_RESTORE, cluster, touched):
        raise Refused(D(N_("%(user)s may not restore into these namespaces."), user=_who(actor)))
    return namespaces, mapping


def preview(*, actor, cluster: Cluster, backup_name: str, namespaces: list[str], mapping: dict[str, str]) -> dict:
    """What a restore would create: {"objects": [{"kind", "from", "to", "exists"}], "namespaces": [...], ...}.

    Velero leaves an object that already exists as it is (existing resource policy "none"): those are marked."""
    view = _backup_for_restore(actor, cluster, backup_name)
    namespaces, mapping = _plan_restore(actor, cluster, view, namespaces, mapping)
    namespace = namespace_of(cluster)
    with kube.client(cluster, as_user=actor) as k:
        listed = k8s.resource_list(k, namespace, backup_name)
    objects = []
    for kind, items in sorted(listed.items()):
        for item in items:
            ns, _slash, name = item.rpartition("/")
            if ns and namespaces != ["*"] and ns not in namespaces:
                continue
            if not ns and namespaces != ["*"]:
                continue  # cluster-scoped objects are not restored with a namespace selection
            objects.append({"kind": kind, "from": item, "to": f"{mapping.get(ns, ns)}/{name}" if ns else name})
            if len(objects) >= MAX_PREVIEW:
                break
    existing = _existing(actor, cluster, objects)
    for obj in objects:
        known = existing.get(obj["kind"], set())
        obj["exists"] = None if known is None else obj["to"] in known
    started = view.started.isoformat() if view.started else ""
    return shown_restore(backup_name, namespaces, mapping, objects, started=started)


def shown_restore(backup: str, namespaces: list[str], mapping: dict, objects: list[dict], *, started: str) -> dict:
    """A preview as the page, the audit event and a change request read it, with its counts."""
    return {
        "backup": backup,
        "started": started,  # the backup's start: a backup replaced under the same name is another one
        "namespaces": namespaces,
        "mapping": mapping,
        "objects": objects,
        "new": sum(1 for o in objects if o["exists"] is False),
        "kept": sum(1 for o in objects if o["exists"] is True),
        "unknown": sum(1 for o in objects if o["exists"] is None),
        "truncated": len(objects) >= MAX_PREVIEW,
    }


def _existing(actor, cluster: Cluster, objects: list[dict]) -> dict[str, set[str] | None]:
    """Which of the objects a restore would create exist now: per kind (Velero's "group/version/Kind"), the names
    found, from one list per kind and namespace as the person; None for a kind whose objects cannot be told (the
    cluster does not serve it, or the person may not list it). Plurals come from the API's discovery documents."""
    wanted: dict[tuple[str, str], set[str]] = {}
    for obj in objects:
        if "/" in obj["to"]:
            wanted.setdefault((obj["kind"], obj["to"].split("/", 1)[0]), set()).add(obj["to"])
    found: dict[str, set[str] | None] = {}
    plurals: dict[str, dict[str, str]] = {}
    with kube.client(cluster, as_user=actor) as k:
        for (kind, namespace), names in sorted(wanted.items()):
            group_version, _slash, name_of_kind = kind.rpartition("/")
            base = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
            if group_version not in plurals:
                try:
                    resources = k.json("GET", base).get("resources") or []
                except kube.KubeError:
                    resources = []
                plurals[group_version] = {
                    r.get("kind", ""): r.get("name", "")
                    for r in resources
                    if r.get("namespaced") and "/" not in r.get("name", "")
                }
            plural = plurals[group_version].get(name_of_kind)
            if not plural or found.get(kind, set()) is None:
                found[kind] = None
                continue
            try:
                items = k.json("GET", f"{base}/namespaces/{namespace}/{plural}").get("items") or []
            except kube.KubeError:
                found[kind] = None
                continue
            live = {f"{namespace}/{(o.get('metadata') or {}).get('name')}" for o in items}
            found.setdefault(kind, set()).update(names & live)
    return found


def restore_change(*, actor, cluster: Cluster, shown: dict) -> gates.Change:
    """A restore described for four-eyes approval: the objects it creates (the preview), the namespaces it
    reaches, and the backup it was made against (a backup replaced under the same name makes it stale)."""
    backup_name, objects = shown["backup"], shown["objects"]
    targets = [shown["mapping"].get(n, n) for n in shown["namespaces"]]
    diff = "\n".join(
        f"{'=' if o['exists'] else '+'} {o['kind']} {o['to']}" + (f"  ({o['from']})" if o["from"] != o["to"] else "")
        for o in objects
    )
    return gates.Change(
        action="backups.restore",
        cluster=cluster,
        namespace=targets[0] if len(targets) == 1 and targets[0] != "*" else "",
        namespaces=[t for t in targets if t != "*"],
        every_project="*" in targets or not targets,
        actor=actor,
        kind="Restore",
        name=backup_name,
        summary=D(
            N_("Restore backup %(backup)s into %(namespaces)s (%(new)s objects to create)"),
            backup=backup_name,
            namespaces=", ".join(targets) or "*",
            new=shown["new"],
        ),
        payload={
            "cluster": cluster.pk,
            "maker": actor.pk,
            "backup": backup_name,
            "namespaces": shown["namespaces"],
            "mapping": shown["mapping"],
        },
        manifests=objects,
        diff=diff,
        base={"started": shown["started"]},
    )


def restore(
    *,
    actor,
    cluster: Cluster,
    backup_name: str,
    namespaces: list[str],
    mapping: dict[str, str],
    request=None,
    break_glass: str = "",
) -> Restore:
    """Start a Velero restore as ``actor`` after the same checks as the preview; the preview is stored with it and
    in the audit event. The caller has asked for the password again (a dangerous capability).

    Where an approval policy covers the restore (``backups.restore``), nothing starts: ``gates.ApprovalRequired``
    names the change request, whose approval starts the approved preview (``start_restore``); a freeze refuses it
    (``gates.ChangeRefused``) unless ``break_glass`` names an emergency of a person who may."""
    shown = preview(actor=actor, cluster=cluster, backup_name=backup_name, namespaces=namespaces, mapping=mapping)
    gates.guard(restore_change(actor=actor, cluster=cluster, shown=shown), request=request, break_glass=break_glass)
    return start_restore(actor=actor, cluster=cluster, shown=shown, request=request)


def start_restore(*, actor, cluster: Cluster, shown: dict, request=None) -> Restore:
    """Create the Velero Restore of a preview ``shown`` as ``actor`` made it (checked: who may restore where), its
    row, the Job that follows it and the audit event."""
    backup_name = shown["backup"]
    namespace = namespace_of(cluster)
    name = object_name(f"km-restore-{backup_name}"[:40])
    with transaction.atomic():
        with kube.client(cluster, as_user=actor) as k:
            k8s.create_restore(
                k,
                namespace,
                name,
                backup=backup_name,
                namespaces=shown["namespaces"],
                mapping=shown["mapping"],
                labels=_labels(actor),
            )
        row = Restore.objects.create(
            kind=Kind.VELERO,
            cluster=cluster,
            backup_name=backup_name,
            name=name,
            namespace_mapping=shown["mapping"],
            preview=shown,
            actor=actor,
        )
        row.job = start_job(
            task=tasks.follow_velero,
            title=D(N_("Velero restore %(name)s"), name=name),
            actor=actor,
            target=name,
            args=("restore", row.pk),
        )
        row.save(update_fields=["job"])
        audit.record(
            actor=actor,
            action="backups.restore.start",
            cluster=cluster.name,
            namespace=namespace,
            kind="Restore",
            name=name,
            detail={
                "backup": backup_name,
                "namespaces": shown["namespaces"],
                "mapping": shown["mapping"],
                "to_create": [f"{o['kind']} {o['to']}" for o in shown["objects"] if not o["exists"]][:200],
                "left_as_they_are": [f"{o['kind']} {o['to']}" for o in shown["objects"] if o["exists"]][:200],
            },
            request=request,
        )
    return row
