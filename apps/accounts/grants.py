"""Four-eyes approval of role grants (issue 20): giving someone rights may wait for a second person.

A grant is any change that gives rights: a binding made (or changed), capabilities added to a role that is bound,
a person added to a group that is bound, namespaces added to a project that is bound, an account made a
superuser. Each is described as a ``gates.Change`` of the action ``roles.grant``, reaching where the rights reach:
a project's binding its project, a cluster binding every project of its cluster, a platform binding (or a role, a
group, a superuser) every cluster and project. The approval policies of apps/compliance then apply as to any other
change (windows and freezes do not: access is not a change to what runs).

Two doors, so that no path gets around it:

- the console's services (services.py) call ``gates.guard`` first: the change waits as a change request, is
  refused (a freeze), or goes on (break glass, or nothing covers it) and is written inside ``gates.cleared()``;
  the appliers (approvals.py) write an approved request as its maker;
- every other path (Django admin, a shell, a management command) meets ``check_*`` in the model signals
  (changes.py), which refuse a covered grant with a sentence (``gates.ChangeRefused``) before anything is written.
  Django admin's user form asks the same question in its ``clean``, so the person reads the sentence on the form.

Taking rights away (a binding removed, a role narrowed or deleted, a member removed) is never held back: an access
review, a leaver or an incident needs it at once. It is audited like every change. Memberships written by the
directory or single sign-on (``ldap-sync``, ``oidc-sync``) follow the identity provider, whose own change
management governs them.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from apps.accounts import actor as actors
from apps.accounts.models import Binding, Project, Role
from apps.core import gates
from apps.core.deferred import N_
from apps.core.deferred import text as D

ACTION = "roles.grant"
PROJECT_FIELDS = ("cluster_id", "slug", "name", "description", "namespaces")
ROLE_FIELDS = ("name_en", "name_zh", "description_en", "description_zh", "capabilities")
SYNCS = (actors.DIRECTORY_SYNC, actors.SSO_SYNC)
User = get_user_model()


# Where rights reach --------------------------------------------------------------------------------------------


def _reach(bindings) -> dict:
    """The Change fields for rights given through ``bindings``: one cluster and its namespaces, or the platform."""
    clusters = {}
    namespaces: set[str] = set()
    every, projects = False, set()
    for binding in bindings:
        if binding.scope == Binding.Scope.PLATFORM:
            return {"cluster": None, "every_project": True}
        if binding.scope == Binding.Scope.CLUSTER:
            clusters[binding.cluster_id] = binding.cluster
            every = True
        else:
            clusters[binding.project.cluster_id] = binding.project.cluster
            namespaces.update(binding.project.namespaces)
            projects.add(binding.project)
    if len(clusters) != 1:
        return {"cluster": None, "every_project": True}
    return {
        "cluster": next(iter(clusters.values())),
        "namespaces": sorted(namespaces),
        "project": next(iter(projects)) if len(projects) == 1 else None,
        "every_project": every,
    }


def _bindings_of(**where) -> list[Binding]:
    return list(Binding.objects.filter(**where).select_related("role", "cluster", "project__cluster"))


def capabilities_of(role: Role) -> list[str]:
    return sorted(role.capabilities or [])


def project_fields(project: Project) -> dict:
    return {**{f: getattr(project, f) for f in PROJECT_FIELDS}, "namespaces": sorted(project.namespaces)}


def role_fields(role: Role) -> dict:
    return {**{f: getattr(role, f) for f in ROLE_FIELDS}, "capabilities": capabilities_of(role)}


# What each grant is, described for a checker -------------------------------------------------------------------


def binding_change(actor, binding: Binding) -> gates.Change:
    role, subject = binding.role, binding.subject_label
    platform = binding.scope == Binding.Scope.PLATFORM
    record = {"kind": "Binding", "role": role.slug, "capabilities": capabilities_of(role), "subject": subject}
    record.update({"scope": binding.scope} if platform else {"scope": binding.scope, "where": binding.scope_label})
    return gates.Change(
        action=ACTION,
        actor=actor,
        kind="Binding",
        name=f"{subject} {role.slug}",
        summary=D(
            N_("Give the role %(role)s to %(subject)s in %(where)s"),
            role=role.slug,
            subject=subject,
            where=D(N_("the whole platform")) if platform else binding.scope_label,
        ),
        payload={
            "kind": "binding",
            "role": role.pk,
            "user": binding.user_id,
            "group": binding.group_id,
            "cluster": binding.cluster_id,
            "project": binding.project_id,
        },
        manifests=[record],
        diff="\n".join(f"+ {code}" for code in record["capabilities"]),
        base={"capabilities": record["capabilities"]},
        namespace="",
        **_reach([binding]),
    )


def role_change(actor, role: Role, capabilities: list[str], fields: dict) -> gates.Change | None:
    """Rights added to a bound role; None when it adds none or nobody holds it."""
    stored = Role.objects.get(pk=role.pk)
    before = capabilities_of(stored)
    added = sorted(set(capabilities) - set(before))
    bindings = _bindings_of(role_id=role.pk)
    if not added or not bindings:
        return None
    record = {"kind": "Role", "role": role.slug, "capabilities": sorted(capabilities), "holders": len(bindings)}
    return gates.Change(
        action=ACTION,
        actor=actor,
        kind="Role",
        name=role.slug,
        summary=D(
            N_("Add %(capabilities)s to the role %(role)s (held by %(count)s bindings)"),
            capabilities=", ".join(added),
            role=role.slug,
            count=len(bindings),
        ),
        payload={"kind": "role", "role": role.pk, "fields": fields},
        manifests=[record],
        diff="\n".join([f"+ {code}" for code in added] + [f"- {c}" for c in sorted(set(before) - set(capabilities))]),
        base={"capabilities": before, "fields": role_fields(stored)},
        namespace="",
        **_reach(bindings),
    )


def membership_change(actor, group: Group, added: list) -> gates.Change | None:
    """People added to a bound group; None when none is added or the group holds no binding."""
    bindings = _bindings_of(group_id=group.pk)
    if not added or not bindings:
        return None
    names = sorted(u.get_username() for u in added)
    record = {
        "kind": "GroupMembers",
        "group": group.name,
        "added": names,
        "roles": sorted({b.role.slug for b in bindings}),
    }
    return gates.Change(
        action=ACTION,
        actor=actor,
        kind="Group",
        name=group.name,
        summary=D(
            N_("Add %(people)s to the group %(group)s, which holds %(roles)s"),
            people=", ".join(names),
            group=group.name,
            roles=", ".join(record["roles"]),
        ),
        payload={"kind": "members", "group": group.pk, "added": sorted(u.pk for u in added)},
        manifests=[record],
        diff="\n".join(f"+ {name}" for name in names),
        base={"members": sorted(group.user_set.values_list("pk", flat=True))},
        namespace="",
        **_reach(bindings),
    )


def project_change(actor, project: Project) -> gates.Change | None:
    """Namespaces added to a project that holds bindings (or the project moved to another cluster): everyone bound
    there gets rights in them. None when it adds none or nobody is bound."""
    before = Project.objects.filter(pk=project.pk).values(*PROJECT_FIELDS).first()
    if before is None:
        return None  # a new project: nobody is bound yet
    moved = before["cluster_id"] != project.cluster_id
    added = sorted(set(project.namespaces) if moved else set(project.namespaces) - set(before["namespaces"]))
    bindings = _bindings_of(project_id=project.pk)
    if not added or not bindings:
        return None
    record = {
        "kind": "Project",
        "project": project.slug,
        "cluster": project.cluster.name,
        "namespaces": sorted(project.namespaces),
        "bindings": sorted(f"{b.subject_label} {b.role.slug}" for b in bindings),
    }
    return gates.Change(
        action=ACTION,
        actor=actor,
        cluster=project.cluster,
        namespace="",
        namespaces=added,
        project=project,
        kind="Project",
        name=project.slug,
        summary=D(
            N_("Add the namespaces %(namespaces)s to the project %(project)s (%(count)s bindings reach them)"),
            namespaces=", ".join(added),
            project=project.name,
            count=len(bindings),
        ),
        payload={
            "kind": "project",
            "project": project.pk,
            "fields": project_fields(project),
        },
        manifests=[record],
        diff="\n".join(f"+ {name}" for name in added),
        base={"fields": {**before, "namespaces": sorted(before["namespaces"])}},
    )


def superuser_change(actor, user) -> gates.Change:
    name = user.get_username()
    return gates.Change(
        action=ACTION,
        actor=actor,
        cluster=None,
        namespace="",
        every_project=True,
        kind="User",
        name=name,
        summary=D(N_("Make %(name)s a superuser (every right everywhere)"), name=name),
        payload={"kind": "superuser", "user": user.pk},
        manifests=[{"kind": "User", "name": name, "superuser": True}],
        diff="+ superuser",
    )


# The rows' own checks (every path that is not the console's service) --------------------------------------------


def _refuse(change: gates.Change | None) -> None:
    if change is None:
        return
    who = actors.current()
    if who.name in SYNCS:
        return
    why = gates.held(change)
    if why is not None:
        raise gates.ChangeRefused(
            D(
                N_(
                    "%(why)s Give this role from the console (Access), where it waits as a change request for a "
                    "second person; nothing was changed."
                ),
                why=why,
            )
        )


def _actor():
    return actors.current().user


def check_binding(binding: Binding) -> None:
    _refuse(binding_change(_actor(), binding))


def check_role(role: Role) -> None:
    if role.pk is None or role._state.adding or role.builtin:
        return  # a new role: nobody holds it yet; a built-in one changes with the product's releases only
    _refuse(role_change(_actor(), role, list(role.capabilities or []), {}))


def check_project(project: Project) -> None:
    if project.pk is None or project._state.adding:
        return
    _refuse(project_change(_actor(), project))


def check_members(group: Group, user_pks) -> None:
    current = set(group.user_set.values_list("pk", flat=True))
    _refuse(membership_change(_actor(), group, list(User.objects.filter(pk__in=set(user_pks) - current))))


def check_superuser(user, becomes: bool | None = None) -> None:
    """``user`` saved as a superuser (``becomes``: as the admin form would save it; else as it is now)."""
    if not (user.is_superuser if becomes is None else becomes):
        return
    if user.pk is not None and User.objects.filter(pk=user.pk, is_superuser=True).exists():
        return  # already one
    if user.pk is None and not User.objects.filter(is_superuser=True, is_active=True).exists():
        return  # the first administrator of an installation
    _refuse(superuser_change(_actor(), user))


def refusal_for_user_form(user, *, is_superuser: bool, groups) -> str | None:
    """What Django admin's user form says before saving (the same checks as the rows', as a sentence)."""
    try:
        check_superuser(user, becomes=is_superuser)
        held = set(user.groups.values_list("pk", flat=True)) if user.pk else set()
        for group in groups:
            if group.pk not in held:
                _refuse(membership_change(_actor(), group, [user]))
    except gates.ChangeRefused as exc:
        return str(exc)
    return None
