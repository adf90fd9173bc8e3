"""Roles (capability matrix with a rules preview), projects and bindings."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts import capabilities, services
from apps.accounts.capabilities import PROJECTS_MANAGE, USERS_MANAGE
from apps.accounts.decorators import capability_required
from apps.accounts.forms import BindingForm, ProjectForm, RoleForm
from apps.accounts.models import Binding, Project, Role
from apps.core import gates
from apps.core.htmx import render
from apps.core.reauth import require_recent_auth


def granted(request, form, write, saved: str, then):
    """Run a grant's service, ``write(break_glass)``, and answer: the change request it waits as, or ``then()`` with
    ``saved`` said; None when it was refused (a freeze, a refused break glass): the form shows why."""
    try:
        write(gates.break_glass_of(request))
    except gates.ApprovalRequired as exc:  # four-eyes approval: recorded, nothing granted yet
        messages.warning(request, str(exc))
        return redirect("compliance:change_detail", exc.request_id)
    except gates.ChangeRefused as exc:
        form.add_error(None, str(exc))
        return None
    messages.success(request, saved)
    return then()


def _bind(request, form, break_glass: str, **where):
    data = form.cleaned_data
    return services.create_binding(
        actor=request.user,
        role=data["role"],
        user=data["user"],
        group=data["group"],
        request=request,
        break_glass=break_glass,
        **where,
    )


@capability_required(USERS_MANAGE)
def role_list(request):
    roles = Role.objects.annotate(binding_count=Count("bindings"))
    return render(request, "accounts/role_list.html", {"roles": roles})


def _matrix(selected: set[str]) -> list[dict]:
    return [
        {"label": label, "capabilities": [{"cap": cap, "checked": cap.code in selected} for cap in caps]}
        for label, caps in capabilities.grouped_by_domain()
    ]


@capability_required(USERS_MANAGE)
@require_recent_auth
@require_http_methods(["GET", "POST"])
def role_edit(request, role_id: int | None = None):
    role = get_object_or_404(Role, pk=role_id) if role_id else Role()
    if role.builtin and request.method == "POST":
        messages.error(request, _("Built-in roles cannot be changed; create a custom role instead."))
        return redirect("accounts:role_list")
    form = RoleForm(request.POST or None, instance=role)
    if request.method == "POST" and form.is_valid():
        answer = granted(
            request,
            form,
            lambda glass: services.save_role(
                actor=request.user, role=form.save(commit=False), request=request, break_glass=glass
            ),
            _("Role %(name)s was saved.") % {"name": role.name},
            lambda: redirect("accounts:role_list"),
        )
        if answer is not None:
            return answer
    selected = set(form["capabilities"].value() or [])
    context = {"form": form, "role": role, "matrix": _matrix(selected), "rules": capabilities.rules_for(selected)}
    return render(request, "accounts/role_form.html", context)


@capability_required(USERS_MANAGE)
@require_POST
def role_rules_preview(request):
    """htmx: the Kubernetes rules the ticked capabilities generate."""
    selected = {code for code in request.POST.getlist("capabilities") if code in capabilities.BY_CODE}
    return render(request, "accounts/role_form.html", {"rules": capabilities.rules_for(selected)}, partial="rules")


@capability_required(USERS_MANAGE)
@require_recent_auth
@require_POST
def role_delete(request, role_id: int):
    role = get_object_or_404(Role, pk=role_id)
    try:
        services.delete_role(actor=request.user, role=role, request=request)
    except services.BuiltinRoleProtected:
        messages.error(request, _("Built-in roles cannot be deleted."))
    else:
        messages.success(request, _("Role %(name)s and its bindings were deleted.") % {"name": role.name})
    return redirect("accounts:role_list")


@capability_required(PROJECTS_MANAGE)
def project_list(request):
    projects = Project.objects.select_related("cluster").annotate(binding_count=Count("bindings"))
    return render(request, "accounts/project_list.html", {"projects": projects})


@capability_required(PROJECTS_MANAGE)
@require_http_methods(["GET", "POST"])
def project_edit(request, project_id: int | None = None):
    project = get_object_or_404(Project, pk=project_id) if project_id else Project()
    form = ProjectForm(request.POST or None, instance=project)
    if request.method == "POST" and form.is_valid():
        answer = granted(
            request,
            form,
            lambda glass: services.save_project(
                actor=request.user, project=form.save(commit=False), request=request, break_glass=glass
            ),
            _("Project %(name)s was saved.") % {"name": form.instance.name},
            lambda: redirect("accounts:project_detail", form.instance.pk),
        )
        if answer is not None:
            return answer
    return render(request, "accounts/project_form.html", {"form": form, "project": project})


@capability_required(PROJECTS_MANAGE)
@require_http_methods(["GET", "POST"])
def project_detail(request, project_id: int):
    project = get_object_or_404(Project.objects.select_related("cluster"), pk=project_id)
    form = BindingForm(request.POST or None, project=project)
    if request.method == "POST" and form.is_valid():
        answer = granted(
            request,
            form,
            lambda glass: _bind(request, form, glass, project=project),
            _("The binding was added; the cluster is being updated."),
            lambda: redirect("accounts:project_detail", project.pk),
        )
        if answer is not None:
            return answer
    bindings = project.bindings.select_related("role", "user", "group")
    return render(request, "accounts/project_detail.html", {"project": project, "form": form, "bindings": bindings})


@capability_required(PROJECTS_MANAGE)
@require_recent_auth
@require_POST
def project_delete(request, project_id: int):
    project = get_object_or_404(Project, pk=project_id)
    services.delete_project(actor=request.user, project=project, request=request)
    messages.success(request, _("Project %(name)s was deleted.") % {"name": project.name})
    return redirect("accounts:project_list")


@capability_required(PROJECTS_MANAGE)
@require_http_methods(["GET", "POST"])
def binding_list(request):
    form = BindingForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        answer = granted(
            request,
            form,
            lambda glass: _bind(request, form, glass, cluster=form.cleaned_data["cluster"]),
            _("The binding was added; the clusters are being updated."),
            lambda: redirect("accounts:binding_list"),
        )
        if answer is not None:
            return answer
    bindings = Binding.objects.select_related("role", "user", "group", "cluster", "project__cluster")
    return render(request, "accounts/binding_list.html", {"bindings": bindings, "form": form})


@capability_required(PROJECTS_MANAGE)
@require_POST
def binding_delete(request, binding_id: int):
    binding = get_object_or_404(Binding.objects.select_related("role", "project"), pk=binding_id)
    project = binding.project
    services.delete_binding(actor=request.user, binding=binding, request=request)
    messages.success(request, _("The binding was removed; the cluster is being updated."))
    return redirect("accounts:project_detail", project.pk) if project else redirect("accounts:binding_list")
