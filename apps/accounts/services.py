"""Every write the console makes to users, groups, roles, projects and bindings: one transaction, one audit event.

The model signals of changes.py queue the reconcile of the clusters' RBAC after commit (reconcile.py) and end
the sessions of a deactivated or deleted user, for these services and for every other path (Django admin,
management commands, the directory sign-in); ``actor.service`` tells them the service writes the event."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.utils.translation import gettext as _

from apps.accounts import grants, sessions
from apps.accounts.actor import current as current_actor
from apps.accounts.actor import service
from apps.accounts.models import Binding, Project, Role
from apps.clusters.models import Cluster
from apps.core import audit, gates

User = get_user_model()


# Users -----------------------------------------------------------------------------------------


@service
def create_user(*, actor, username: str, email: str = "", full_name: str = "", password: str, request=None) -> User:
    first, _sep, last = full_name.partition(" ")
    user = User.objects.create_user(username=username, email=email, password=password, first_name=first, last_name=last)
    audit.record(actor=actor, action="accounts.user.create", kind="User", name=username, request=request)
    return user


class Refused(Exception):
    """A change the console refuses; ``str()`` is the sentence to show."""


def removal_refusal(actor, user: User) -> str:
    """Why ``actor`` may not deactivate or delete ``user``, as a sentence; empty when they may."""
    if user.pk == getattr(actor, "pk", None):
        return _("You cannot deactivate or delete your own account; ask another administrator.")
    if user.is_superuser and not getattr(actor, "is_superuser", False):
        return _("Only a superuser can deactivate or delete a superuser; ask one to do it.")
    return ""


def _check_may_remove(actor, user: User) -> None:
    refusal = removal_refusal(actor, user)
    if refusal:
        raise Refused(refusal)


@service
def set_user_active(*, actor, user: User, active: bool, request=None) -> None:
    """Deactivating keeps the user's history; the sessions end and the clusters drop their access (changes.py)."""
    if not active:
        _check_may_remove(actor, user)
    user.is_active = active
    user.save(update_fields=["is_active"])
    action = "accounts.user.enable" if active else "accounts.user.disable"
    audit.record(actor=actor, action=action, kind="User", name=user.username, request=request)


@service
def reset_password(*, actor, user: User, request=None) -> str:
    """Give ``user`` a new random password, end their sessions, and return the password to show once."""
    password = secrets.token_urlsafe(12)
    user.set_password(password)
    user.save(update_fields=["password"])
    end_sessions(user)
    audit.record(actor=actor, action="accounts.user.reset_password", kind="User", name=user.username, request=request)
    return password


def user_sessions(user: User) -> list[Session]:
    return sessions.user_sessions(user.pk)


def end_sessions(user: User) -> int:
    return sessions.end_sessions(user.pk)


@service
def end_user_sessions(*, actor, user: User, request=None) -> int:
    count = end_sessions(user)
    audit.record(
        actor=actor,
        action="accounts.user.end_sessions",
        kind="User",
        name=user.username,
        detail={"sessions": count},
        request=request,
    )
    return count


@service
def delete_user(*, actor, user: User, request=None) -> dict:
    """Delete ``user``: their sessions end, their bindings go, and the clusters drop their account at once."""
    _check_may_remove(actor, user)
    username = user.username
    detail = {
        "bindings": sorted(b.k8s_name for b in user.kubemate_bindings.all()),
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "sessions": end_sessions(user),
    }
    user.delete()
    audit.record(actor=actor, action="accounts.user.delete", kind="User", name=username, detail=detail, request=request)
    return detail


# Groups ----------------------------------------------------------------------------------------


def save_group(*, actor, group: Group, members, request=None, approved: bool = False, break_glass: str = "") -> Group:
    """Save ``group`` with exactly ``members``. People added to a group that holds bindings are a grant: where an
    approval policy covers it, nothing changes and ``gates.ApprovalRequired`` names the change request."""
    if not approved and group.pk is not None:
        current = set(group.user_set.values_list("pk", flat=True))
        added = [u for u in members if u.pk not in current]
        change = grants.membership_change(actor, group, added)
        if change is not None:
            gates.guard(change, request=request, break_glass=break_glass)
    with gates.cleared():
        return _save_group(actor=actor, group=group, members=members, request=request)


@service
def _save_group(*, actor, group: Group, members, request=None) -> Group:
    created = group.pk is None
    group.save()
    group.user_set.set(members)
    action = "accounts.group.create" if created else "accounts.group.update"
    audit.record(
        actor=actor,
        action=action,
        kind="Group",
        name=group.name,
        detail={"members": sorted(u.username for u in members)},
        request=request,
    )
    return group


@service
def delete_group(*, actor, group: Group, request=None) -> None:
    name = group.name
    group.delete()
    audit.record(actor=actor, action="accounts.group.delete", kind="Group", name=name, request=request)


# Roles -----------------------------------------------------------------------------------------


class BuiltinRoleProtected(Exception):
    pass


def save_role(*, actor, role: Role, request=None, approved: bool = False, break_glass: str = "") -> Role:
    """Save ``role``. Capabilities added to a role someone holds are a grant: where an approval policy covers it,
    nothing changes and ``gates.ApprovalRequired`` names the change request."""
    if not approved and role.pk is not None and not role.builtin:
        fields = {name: getattr(role, name) for name in grants.ROLE_FIELDS}
        change = grants.role_change(actor, role, list(role.capabilities or []), fields)
        if change is not None:
            gates.guard(change, request=request, break_glass=break_glass)
    with gates.cleared():
        return _save_role(actor=actor, role=role, request=request)


@service
def _save_role(*, actor, role: Role, request=None) -> Role:
    created = role.pk is None
    if not created and Role.objects.filter(pk=role.pk, builtin=True).exists():
        raise BuiltinRoleProtected
    role.full_clean()
    role.save()
    audit.record(
        actor=actor,
        action="accounts.role.create" if created else "accounts.role.update",
        kind="Role",
        name=role.slug,
        detail={"capabilities": sorted(role.capabilities)},
        request=request,
    )
    return role


@service
def delete_role(*, actor, role: Role, request=None) -> None:
    if role.builtin:
        raise BuiltinRoleProtected
    slug = role.slug
    # Bindings go with the role: a binding to nothing grants nothing.
    role.bindings.all().delete()
    role.delete()
    audit.record(actor=actor, action="accounts.role.delete", kind="Role", name=slug, request=request)


# Projects and bindings ---------------------------------------------------------------------------


def save_project(*, actor, project: Project, request=None, approved: bool = False, break_glass: str = "") -> Project:
    """Save ``project``. Namespaces added to a project people are bound to are a grant: where an approval policy
    covers it, nothing changes and ``gates.ApprovalRequired`` names the change request."""
    if not approved:
        change = grants.project_change(actor, project)
        if change is not None:
            gates.guard(change, request=request, break_glass=break_glass)
    with gates.cleared():
        return _save_project(actor=actor, project=project, request=request)


@service
def _save_project(*, actor, project: Project, request=None) -> Project:
    created = project.pk is None
    project.namespaces = sorted(set(project.namespaces))
    project.full_clean()
    project.save()
    audit.record(
        actor=actor,
        action="accounts.project.create" if created else "accounts.project.update",
        cluster=project.cluster.name,
        kind="Project",
        name=project.slug,
        detail={"namespaces": project.namespaces},
        request=request,
    )
    return project


@service
def delete_project(*, actor, project: Project, request=None) -> None:
    cluster_name, slug = project.cluster.name, project.slug
    project.delete()
    audit.record(
        actor=actor, action="accounts.project.delete", cluster=cluster_name, kind="Project", name=slug, request=request
    )


def create_binding(
    *,
    actor,
    role: Role,
    user=None,
    group=None,
    cluster: Cluster | None = None,
    project: Project | None = None,
    request=None,
    approved: bool = False,
    break_glass: str = "",
) -> Binding:
    """Give ``role`` to a user or a group at platform, cluster or project scope. Where an approval policy covers
    the grant (``roles.grant``), nothing changes: ``gates.ApprovalRequired`` names the change request, which
    calls this again with ``approved`` once a second person approves; a freeze refuses it unless ``break_glass``
    names an emergency of a person who may."""
    scope = Binding.Scope.PROJECT if project else Binding.Scope.CLUSTER if cluster else Binding.Scope.PLATFORM
    binding = Binding(role=role, user=user, group=group, scope=scope, cluster=cluster, project=project)
    binding.full_clean()
    if not approved:
        gates.guard(grants.binding_change(actor, binding), request=request, break_glass=break_glass)
    with gates.cleared():
        return _create_binding(actor=actor, binding=binding, request=request)


@service
def _create_binding(*, actor, binding: Binding, request=None) -> Binding:
    role, scope, project, cluster = binding.role, binding.scope, binding.project, binding.cluster
    binding.save()
    audit.record(
        actor=actor,
        action="accounts.binding.create",
        cluster=(project.cluster.name if project else cluster.name if cluster else ""),
        kind="Binding",
        name=binding.k8s_name,
        detail={
            "role": role.slug,
            "subject": binding.subject_label,
            "scope": scope,
            "project": project.slug if project else "",
        },
        request=request,
    )
    return binding


@service
def delete_binding(*, actor, binding: Binding, request=None) -> None:
    name, subject, role = binding.k8s_name, binding.subject_label, binding.role.slug
    binding.delete()
    audit.record(
        actor=actor,
        actor_name=None if actor is not None else current_actor().name,
        action="accounts.binding.delete",
        kind="Binding",
        name=name,
        detail={"role": role, "subject": subject},
        request=request,
    )
