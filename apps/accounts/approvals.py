"""Role grants approved under four-eyes approval (apps/compliance/approvals): each written by its console service as
the maker. Registered with apps/core/gates.py in apps.py; what a grant is and where it reaches is grants.py.

``stale``: the row the request names is gone, or changed since (a role's capabilities or fields, a project's
fields, a group's members): approving would write over that change, so the maker asks again."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from apps.accounts import services
from apps.accounts.grants import capabilities_of, project_fields, role_fields
from apps.accounts.models import Project, Role
from apps.clusters.models import Cluster
from apps.core import gates
from apps.core.deferred import N_
from apps.core.deferred import text as D

User = get_user_model()


def _gone() -> str:
    return D(N_("What the request named was deleted since; the maker must ask again."))


# For each kind of request: the row it names, how to read its state now (against ``base``), its name, and what a
# changed state is called.
EDITED = N_("%(name)s was edited since the request; the maker must ask again.")
STALE_OF = {
    "binding": (Role, "role", "capabilities", capabilities_of, lambda r: r.slug, EDITED),
    "role": (Role, "role", "fields", role_fields, lambda r: r.slug, EDITED),
    "project": (Project, "project", "fields", project_fields, lambda p: p.name, EDITED),
    "members": (
        Group,
        "group",
        "members",
        lambda g: sorted(g.user_set.values_list("pk", flat=True)),
        lambda g: g.name,
        N_("The members of %(name)s changed since the request; the maker must ask again."),
    ),
}


def stale(payload: dict, base: dict) -> str | None:
    found = STALE_OF.get(payload.get("kind"))
    if found is None:
        return D(N_("This kind of change can no longer be applied."))
    model, key, base_key, state_of, name_of, sentence = found
    row = model.objects.filter(pk=payload[key]).first()
    if row is None:
        return _gone()
    return D(sentence, name=name_of(row)) if state_of(row) != base.get(base_key) else None


BINDING_ROWS = {"role": Role, "user": User, "group": Group, "cluster": Cluster, "project": Project}


def _binding_rows(payload: dict) -> dict | None:
    """The role, subject and scope a binding request names, as rows; None when one of them was deleted since."""
    rows = {
        key: model.objects.filter(pk=pk).first() if (pk := payload.get(key)) else None
        for key, model in BINDING_ROWS.items()
    }
    if any(payload.get(key) and rows[key] is None for key in rows):
        return None
    return rows


def apply(payload: dict, maker, *, change_request) -> str:
    kind = payload.get("kind")
    if kind == "binding":
        rows = _binding_rows(payload)
        if rows is None:
            raise gates.ChangeRefused(_gone())
        made = services.create_binding(actor=maker, approved=True, **rows)
        return D(N_("%(subject)s now holds %(role)s."), subject=made.subject_label, role=made.role.slug)
    if kind == "role":
        role = Role.objects.get(pk=payload["role"])
        for name, value in payload["fields"].items():
            setattr(role, name, value)
        services.save_role(actor=maker, role=role, approved=True)
        count = len(role.capabilities)
        return D(N_("The role %(role)s now holds %(count)s capabilities."), role=role.slug, count=count)
    if kind == "project":
        project = Project.objects.get(pk=payload["project"])
        for name, value in payload["fields"].items():
            setattr(project, name, value)
        services.save_project(actor=maker, project=project, approved=True)
        return D(
            N_("The project %(project)s now holds %(namespaces)s."),
            project=project.name,
            namespaces=", ".join(project.namespaces),
        )
    group = Group.objects.get(pk=payload["group"])
    members = list(group.user_set.all()) + list(User.objects.filter(pk__in=payload["added"]))
    services.save_group(actor=maker, group=group, members=members, approved=True)
    return D(N_("The group %(group)s now has %(count)s members."), group=group.name, count=len(set(members)))
