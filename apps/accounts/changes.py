"""Every change to users, groups, roles, projects and bindings is audited and projected, whatever made it.

The console's services, Django admin, management commands, the directory sign-in, a shell: all of them end in
a model signal, so the signals are the one place that (a) writes the audit event, in the transaction of the
change, naming the actor of actor.py, and (b) queues the RBAC projection of the clusters it touches once the
transaction commits, and ends the sessions of a user who was deactivated or deleted. The console's services
write their own event with a richer detail (``actor.service``); the signals then skip theirs, so that each
change is written once. Connected in ``AccountsConfig.ready``.
"""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import is_password_usable
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save

from apps.accounts import actor, grants, sessions
from apps.accounts.models import Binding, Project, Role
from apps.accounts.tasks import reconcile_cluster
from apps.clusters.models import Cluster
from apps.core import audit

logger = logging.getLogger(__name__)
User = get_user_model()

USER_FIELDS = ("username", "first_name", "last_name", "email", "is_active", "is_staff", "is_superuser", "password")
# What the projection reads of a user (projection.py): the account's name and display name, and its grants.
USER_PROJECTED = {"username", "first_name", "last_name", "is_active", "is_superuser"}
GROUP_FIELDS = ("name",)
ROLE_FIELDS = ("slug", "name_en", "name_zh", "description_en", "description_zh", "capabilities")
ROLE_PROJECTED = {"slug", "name_en", "capabilities"}
PROJECT_FIELDS = ("cluster_id", "slug", "name", "description", "namespaces")
PROJECT_PROJECTED = {"cluster_id", "namespaces"}
BINDING_FIELDS = ("role_id", "user_id", "group_id", "scope", "cluster_id", "project_id")
BEFORE = "_kubemate_before"
NEW_VALUE = "changed"  # what the audit says of a new password, instead of its hash


# The projection, once the transaction commits -------------------------------------------------------------


class Projection:
    """The clusters to reconcile when the transaction commits; one per transaction, however many changes."""

    def __init__(self) -> None:
        self.everywhere = False
        self.cluster_ids: set[int] = set()

    def __call__(self) -> None:
        ids = Cluster.objects.values_list("pk", flat=True) if self.everywhere else self.cluster_ids
        for cluster_id in sorted(ids):
            reconcile_cluster.delay(cluster_id)


def _pending() -> Projection | None:
    """The projection already queued by this transaction, unless its savepoint could still roll back alone."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        return None
    open_savepoints = set(connection.savepoint_ids)
    for savepoints, func, _robust in connection.run_on_commit:
        if isinstance(func, Projection) and savepoints <= open_savepoints:
            return func
    return None


def project(cluster_ids=None) -> None:
    """Reconcile these clusters (every cluster when None) once the current transaction commits."""
    queued = _pending()
    fresh = queued is None
    if fresh:
        queued = Projection()
    if cluster_ids is None:
        queued.everywhere = True
    else:
        queued.cluster_ids.update(i for i in cluster_ids if i is not None)
    if fresh:
        # Robust: the commit stands when the broker cannot take the task; the scheduled reconcile catches up.
        transaction.on_commit(queued, robust=True)


# Recording -----------------------------------------------------------------------------------------------


def _record(action: str, kind: str, name: str, detail: dict | None = None, cluster: str = "") -> None:
    if actor.audited_by_service():
        return
    who = actor.current()
    audit.record(
        actor=who.user,
        actor_name=who.name,
        request=who.request,
        action=action,
        kind=kind,
        name=name,
        cluster=cluster,
        detail=detail,
    )


def _remember(model, fields: tuple[str, ...]):
    """A pre_save receiver keeping the stored values of ``fields``, to say afterwards what changed."""
    watched = set(fields) | {f.removesuffix("_id") for f in fields}

    def receiver(sender, instance, update_fields=None, **kwargs) -> None:
        if update_fields is not None and not set(update_fields) & watched:
            return  # e.g. last_login on each sign-in: nothing audited changes
        if instance.pk is not None and not instance._state.adding:
            setattr(instance, BEFORE, model.objects.filter(pk=instance.pk).values(*fields).first())

    return receiver


def _changes(instance, fields: tuple[str, ...]) -> dict | None:
    """{field: [before, after]} for the fields that changed in this save; None when it was not looked at."""
    before = instance.__dict__.pop(BEFORE, None)
    if before is None:
        return None
    return {f: [before[f], getattr(instance, f)] for f in fields if before[f] != getattr(instance, f)}


# Users ---------------------------------------------------------------------------------------------------


def _user_saved(sender, instance, created, **kwargs) -> None:
    if created:
        _record(
            "accounts.user.create",
            "User",
            instance.get_username(),
            {"active": instance.is_active, "staff": instance.is_staff, "superuser": instance.is_superuser},
        )
        project()
        return
    changed = _changes(instance, USER_FIELDS)
    if not changed:
        return
    password = changed.pop("password", None)
    if password is not None and (
        getattr(instance, "_password", None) is not None
        or is_password_usable(password[0]) != is_password_usable(password[1])
    ):
        changed["password"] = NEW_VALUE  # never the hash; a re-hash at sign-in keeps the password and is not logged
    if not changed:
        return
    _record("accounts.user.update", "User", instance.get_username(), {"changed": changed})
    if changed.get("is_active") == [True, False]:
        sessions.end_sessions(instance.pk)
    if USER_PROJECTED & set(changed):
        project()


def _user_deleting(sender, instance, **kwargs) -> None:
    instance._kubemate_bindings = sorted(b.k8s_name for b in Binding.objects.filter(user_id=instance.pk))
    instance._kubemate_groups = sorted(instance.groups.values_list("name", flat=True))


def _user_deleted(sender, instance, **kwargs) -> None:
    detail = {
        "bindings": getattr(instance, "_kubemate_bindings", []),
        "groups": getattr(instance, "_kubemate_groups", []),
        "sessions": sessions.end_sessions(instance.pk),
    }
    _record("accounts.user.delete", "User", instance.get_username(), detail)
    project()


# Groups and memberships ------------------------------------------------------------------------------------


def _group_saved(sender, instance, created, **kwargs) -> None:
    if created:
        _record("accounts.group.create", "Group", instance.name)
        return
    changed = _changes(instance, GROUP_FIELDS)
    if changed:
        _record("accounts.group.update", "Group", instance.name, {"changed": changed})


def _group_deleting(sender, instance, **kwargs) -> None:
    instance._kubemate_bindings = sorted(b.k8s_name for b in Binding.objects.filter(group_id=instance.pk))
    instance._kubemate_members = sorted(instance.user_set.values_list("username", flat=True))


def _group_deleted(sender, instance, **kwargs) -> None:
    detail = {
        "bindings": getattr(instance, "_kubemate_bindings", []),
        "members": getattr(instance, "_kubemate_members", []),
    }
    _record("accounts.group.delete", "Group", instance.name, detail)
    if detail["bindings"]:
        project()


def _names(model, pks) -> list[str]:
    field = "username" if model is User else "codename" if model is Permission else "name"
    return sorted(model.objects.filter(pk__in=pks).values_list(field, flat=True))


def _m2m_receiver(kind_of_change: str, projected: bool):
    """An m2m_changed receiver for user<->group memberships or user/group permissions."""

    def receiver(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
        if action == "pre_clear":
            instance._kubemate_cleared = set(_clear_targets(sender, instance))
            return
        if action not in ("post_add", "post_remove", "post_clear"):
            return
        if action == "post_clear":
            pk_set = instance.__dict__.pop("_kubemate_cleared", set())
        if not pk_set:
            return
        verb = "add" if action == "post_add" else "remove"
        kind = type(instance).__name__
        name = instance.get_username() if isinstance(instance, User) else str(instance)
        targets = _names(model, pk_set)
        detail_key = {User: "members", Group: "groups", Permission: "permissions"}[model]
        _record(f"accounts.{kind_of_change}.{verb}", kind, name, {detail_key: targets})
        if projected:
            project()

    return receiver


def _clear_targets(through, instance) -> list[int]:
    """The pks on the other side of ``through`` that a clear() of ``instance``'s side is about to remove."""
    source, target = None, None
    for field in through._meta.get_fields():
        remote = getattr(field, "related_model", None)
        if getattr(field, "many_to_one", False) and remote is not None:
            if isinstance(instance, remote):
                source = field
            else:
                target = field
    if source is None or target is None:  # a model linked to itself, which none of ours is
        return []
    return list(through.objects.filter(**{source.name: instance.pk}).values_list(target.attname, flat=True))


# Roles, projects and bindings ------------------------------------------------------------------------------


def _role_saved(sender, instance, created, **kwargs) -> None:
    if created:
        _record("accounts.role.create", "Role", instance.slug, {"capabilities": sorted(instance.capabilities)})
        project()
        return
    changed = _changes(instance, ROLE_FIELDS)
    if changed:
        _record("accounts.role.update", "Role", instance.slug, {"changed": changed})
        if ROLE_PROJECTED & set(changed):
            project()


def _role_deleted(sender, instance, **kwargs) -> None:
    _record("accounts.role.delete", "Role", instance.slug)
    project()


def _cluster_name(cluster_id) -> str:
    return Cluster.objects.filter(pk=cluster_id).values_list("name", flat=True).first() or ""


def _project_saved(sender, instance, created, **kwargs) -> None:
    cluster = _cluster_name(instance.cluster_id)
    if created:
        _record("accounts.project.create", "Project", instance.slug, {"namespaces": instance.namespaces}, cluster)
        return
    changed = _changes(instance, PROJECT_FIELDS)
    if changed:
        _record("accounts.project.update", "Project", instance.slug, {"changed": changed}, cluster)
        if PROJECT_PROJECTED & set(changed):
            project({instance.cluster_id, *changed.get("cluster_id", [])})


def _project_deleting(sender, instance, **kwargs) -> None:
    instance._kubemate_bindings = sorted(b.k8s_name for b in Binding.objects.filter(project_id=instance.pk))


def _project_deleted(sender, instance, **kwargs) -> None:
    detail = {"namespaces": instance.namespaces, "bindings": getattr(instance, "_kubemate_bindings", [])}
    _record("accounts.project.delete", "Project", instance.slug, detail, _cluster_name(instance.cluster_id))
    project([instance.cluster_id])


def _binding_clusters(binding: Binding) -> list[int] | None:
    """The clusters a binding reaches: one, or None for every cluster (platform scope)."""
    if binding.scope == Binding.Scope.PROJECT:
        return list(Project.objects.filter(pk=binding.project_id).values_list("cluster_id", flat=True))
    if binding.scope == Binding.Scope.CLUSTER:
        return [binding.cluster_id]
    return None


def _binding_detail(binding: Binding) -> dict:
    subject = (
        User.objects.filter(pk=binding.user_id).values_list("username", flat=True).first()
        if binding.user_id
        else "@" + (Group.objects.filter(pk=binding.group_id).values_list("name", flat=True).first() or "")
    )
    project_slug = Project.objects.filter(pk=binding.project_id).values_list("slug", flat=True).first()
    return {
        "role": Role.objects.filter(pk=binding.role_id).values_list("slug", flat=True).first(),
        "subject": subject or "",
        "scope": binding.scope,
        "project": project_slug or "",
    }


def _binding_cluster_name(binding: Binding) -> str:
    clusters = _binding_clusters(binding)
    return _cluster_name(clusters[0]) if clusters else ""


def _binding_saved(sender, instance, created, **kwargs) -> None:
    if created:
        _record(
            "accounts.binding.create",
            "Binding",
            instance.k8s_name,
            _binding_detail(instance),
            _binding_cluster_name(instance),
        )
        project(_binding_clusters(instance))
        return
    changed = _changes(instance, BINDING_FIELDS)
    if changed:
        _record("accounts.binding.update", "Binding", instance.k8s_name, {"changed": changed})
        project(None)


def _binding_deleted(sender, instance, **kwargs) -> None:
    # Deleted with its user, group, project or cluster: that deletion's event names it and projects.
    parents = (
        (User, instance.user_id),
        (Group, instance.group_id),
        (Project, instance.project_id),
        (Cluster, instance.cluster_id),
    )
    if any(pk is not None and not model.objects.filter(pk=pk).exists() for model, pk in parents):
        return
    _record(
        "accounts.binding.delete",
        "Binding",
        instance.k8s_name,
        _binding_detail(instance),
        _binding_cluster_name(instance),
    )
    project(_binding_clusters(instance))


# Grants a policy holds back (grants.py): refused before the row is written, on every path but the console's -------


def _binding_saving(sender, instance, **kwargs) -> None:
    grants.check_binding(instance)


def _role_saving(sender, instance, **kwargs) -> None:
    grants.check_role(instance)


def _project_saving(sender, instance, **kwargs) -> None:
    grants.check_project(instance)


def _user_saving(sender, instance, **kwargs) -> None:
    grants.check_superuser(instance)


def _membership_adding(sender, instance, action, model, pk_set, **kwargs) -> None:
    if action != "pre_add" or not pk_set:
        return
    if isinstance(instance, Group):
        grants.check_members(instance, pk_set)
        return
    for group in Group.objects.filter(pk__in=pk_set):
        grants.check_members(group, [instance.pk])


def connect() -> None:
    uid = "kubemate.changes."
    for model, fields in (
        (User, USER_FIELDS),
        (Group, GROUP_FIELDS),
        (Role, ROLE_FIELDS),
        (Project, PROJECT_FIELDS),
        (Binding, BINDING_FIELDS),
    ):
        pre_save.connect(_remember(model, fields), sender=model, weak=False, dispatch_uid=f"{uid}{model.__name__}.pre")
    pre_save.connect(_binding_saving, sender=Binding, dispatch_uid=f"{uid}binding.grant")
    pre_save.connect(_role_saving, sender=Role, dispatch_uid=f"{uid}role.grant")
    pre_save.connect(_user_saving, sender=User, dispatch_uid=f"{uid}user.grant")
    pre_save.connect(_project_saving, sender=Project, dispatch_uid=f"{uid}project.grant")
    m2m_changed.connect(_membership_adding, sender=User.groups.through, dispatch_uid=f"{uid}membership.grant")
    post_save.connect(_user_saved, sender=User, dispatch_uid=f"{uid}user.save")
    pre_delete.connect(_user_deleting, sender=User, dispatch_uid=f"{uid}user.deleting")
    post_delete.connect(_user_deleted, sender=User, dispatch_uid=f"{uid}user.delete")
    post_save.connect(_group_saved, sender=Group, dispatch_uid=f"{uid}group.save")
    pre_delete.connect(_group_deleting, sender=Group, dispatch_uid=f"{uid}group.deleting")
    post_delete.connect(_group_deleted, sender=Group, dispatch_uid=f"{uid}group.delete")
    m2m_changed.connect(
        _m2m_receiver("membership", projected=True),
        sender=User.groups.through,
        weak=False,
        dispatch_uid=f"{uid}membership",
    )
    for through, name in ((User.user_permissions.through, "user"), (Group.permissions.through, "group")):
        m2m_changed.connect(
            _m2m_receiver("permission", projected=False),
            sender=through,
            weak=False,
            dispatch_uid=f"{uid}{name}.permissions",
        )
    post_save.connect(_role_saved, sender=Role, dispatch_uid=f"{uid}role.save")
    post_delete.connect(_role_deleted, sender=Role, dispatch_uid=f"{uid}role.delete")
    post_save.connect(_project_saved, sender=Project, dispatch_uid=f"{uid}project.save")
    pre_delete.connect(_project_deleting, sender=Project, dispatch_uid=f"{uid}project.deleting")
    post_delete.connect(_project_deleted, sender=Project, dispatch_uid=f"{uid}project.delete")
    post_save.connect(_binding_saved, sender=Binding, dispatch_uid=f"{uid}binding.save")
    post_delete.connect(_binding_deleted, sender=Binding, dispatch_uid=f"{uid}binding.delete")
