"""Every write to users, groups, roles, projects and bindings: one transaction, one audit event,
and a reconcile of the clusters' RBAC queued after commit (the reconcile itself: reconcile.py)."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Binding, Project, Role
from apps.accounts.tasks import reconcile_all
from apps.clusters.models import Cluster
from apps.core import audit

User = get_user_model()


def schedule_reconcile() -> None:
    """Queue a reconcile of every cluster once the current transaction commits."""
    transaction.on_commit(reconcile_all.delay)


# Users -----------------------------------------------------------------------------------------


@transaction.atomic
def create_user(*, actor, username: str, email: str = "", full_name: str = "", password: str, request=None) -> User:
    first, _, last = full_name.partition(" ")
    user = User.objects.create_user(username=username, email=email, password=password, first_name=first, last_name=last)
    audit.record(actor=actor, action="accounts.user.create", kind="User", name=username, request=request)
    schedule_reconcile()
    return user


@transaction.atomic
def set_user_active(*, actor, user: User, active: bool, request=None) -> None:
    user.is_active = active
    user.save(update_fields=["is_active"])
    if not active:
        end_sessions(user)
    action = "accounts.user.enable" if active else "accounts.user.disable"
    audit.record(actor=actor, action=action, kind="User", name=user.username, request=request)
    schedule_reconcile()


@transaction.atomic
def reset_password(*, actor, user: User, request=None) -> str:
    """Give ``user`` a new random password, end their sessions, and return the password to show once."""
    password = secrets.token_urlsafe(12)
    user.set_password(password)
    user.save(update_fields=["password"])
    end_sessions(user)
    audit.record(actor=actor, action="accounts.user.reset_password", kind="User", name=user.username, request=request)
    return password


def user_sessions(user: User) -> list[Session]:
    live = Session.objects.filter(expire_date__gt=timezone.now())
    return [s for s in live if str(s.get_decoded().get("_auth_user_id")) == str(user.pk)]


def end_sessions(user: User) -> int:
    sessions = user_sessions(user)
    for session in sessions:
        session.delete()
    from django.core.cache import cache

    # cached_db sessions: drop the cached copies too.
    cache.delete_many([f"django.contrib.sessions.cached_db{s.session_key}" for s in sessions])
    return len(sessions)


@transaction.atomic
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


@transaction.atomic
def delete_user(*, actor, user: User, request=None) -> None:
    username = user.username
    user.delete()
    audit.record(actor=actor, action="accounts.user.delete", kind="User", name=username, request=request)
    schedule_reconcile()


# Groups ----------------------------------------------------------------------------------------


@transaction.atomic
def save_group(*, actor, group: Group, members, request=None) -> Group:
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
    schedule_reconcile()
    return group


@transaction.atomic
def delete_group(*, actor, group: Group, request=None) -> None:
    name = group.name
    group.delete()
    audit.record(actor=actor, action="accounts.group.delete", kind="Group", name=name, request=request)
    schedule_reconcile()


# Roles -----------------------------------------------------------------------------------------


class BuiltinRoleProtected(Exception):
    pass


@transaction.atomic
def save_role(*, actor, role: Role, request=None) -> Role:
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
    schedule_reconcile()
    return role


@transaction.atomic
def delete_role(*, actor, role: Role, request=None) -> None:
    if role.builtin:
        raise BuiltinRoleProtected
    slug = role.slug
    # Bindings go with the role: a binding to nothing grants nothing.
    role.bindings.all().delete()
    role.delete()
    audit.record(actor=actor, action="accounts.role.delete", kind="Role", name=slug, request=request)
    schedule_reconcile()


# Projects and bindings ---------------------------------------------------------------------------


@transaction.atomic
def save_project(*, actor, project: Project, request=None) -> Project:
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
    schedule_reconcile()
    return project


@transaction.atomic
def delete_project(*, actor, project: Project, request=None) -> None:
    cluster_name, slug = project.cluster.name, project.slug
    project.delete()
    audit.record(
        actor=actor, action="accounts.project.delete", cluster=cluster_name, kind="Project", name=slug, request=request
    )
    schedule_reconcile()


@transaction.atomic
def create_binding(
    *,
    actor,
    role: Role,
    user=None,
    group=None,
    cluster: Cluster | None = None,
    project: Project | None = None,
    request=None,
) -> Binding:
    scope = Binding.Scope.PROJECT if project else Binding.Scope.CLUSTER if cluster else Binding.Scope.PLATFORM
    binding = Binding(role=role, user=user, group=group, scope=scope, cluster=cluster, project=project)
    binding.full_clean()
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
    schedule_reconcile()
    return binding


@transaction.atomic
def delete_binding(*, actor, binding: Binding, request=None) -> None:
    name, subject, role = binding.k8s_name, binding.subject_label, binding.role.slug
    binding.delete()
    audit.record(
        actor=actor,
        action="accounts.binding.delete",
        kind="Binding",
        name=name,
        detail={"role": role, "subject": subject},
        request=request,
    )
    schedule_reconcile()
