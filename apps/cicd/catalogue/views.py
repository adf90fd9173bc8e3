"""The CI/CD catalogue pages: registries (the platform's) and each project's approved base images; a registry's
repositories with their tags and digests; each project's policy and vulnerability exceptions; the offline
vulnerability database. Views authorize (access.py), validate a form, call a service (services.py, vulndb.py),
render. Refusals come back as a sentence; missing and forbidden objects answer 404."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from apps.accounts.capabilities import CICD_EDIT, CICD_EXCEPTIONS, CICD_VIEW
from apps.cicd import access, services
from apps.cicd.catalogue import vulndb as vulndb_import
from apps.cicd.catalogue.forms import BaseImageForm, BundleForm, ExceptionForm, PolicyForm, RegistryForm
from apps.cicd.models import BaseImage, Policy, Registry, ScanException, VulnDatabase
from apps.core.deferred import Failure
from apps.core.htmx import render
from apps.core.reauth import require_recent_auth

PAST_EXCEPTIONS_SHOWN = 20
REPOSITORIES_SHOWN = 300
SOON = timedelta(days=7)  # an exception ending within this is shown in warning colours

# Actions with a dangerous capability (cicd.admin, cicd.exceptions) need a recent password proof, which the
# confirmation dialog sends with the form. Each view authorizes first (404 for others), then goes through
# require_recent_auth (reauth.py) for the action itself.


def _viewer(user) -> None:
    if not (access.is_admin(user) or access.holds(user, CICD_VIEW)):
        raise Http404


def _not_post(request):
    """405 for anything but POST, answered after the lookups: a person who may not see the object gets 404 for
    any method, as for a missing one."""
    return None if request.method == "POST" else HttpResponseNotAllowed(["POST"])


def _admin(user) -> None:
    if not access.is_admin(user):
        raise Http404


def _projects(user):
    return access.projects(user, CICD_VIEW).order_by("cluster__name", "name")


def _project(user, pk: int):
    found = _projects(user).filter(pk=pk).first()
    if found is None:
        raise Http404
    return found


def _ids(project) -> str:
    """Field ids of one project's form on a page holding a form per project."""
    return f"id_p{project.pk}_%s"


def _registries(user):
    """Registries a person sees listed: all for platform administrators; else those of their projects and of
    their projects' clusters."""
    every = Registry.objects.select_related("cluster", "project__cluster", "created_by")
    if access.is_admin(user):
        return every
    projects = access.projects(user, CICD_VIEW)
    return every.filter(Q(project__in=projects) | Q(project__isnull=True, cluster__in=projects.values("cluster")))


def _readable(user, registry: Registry) -> bool:
    """Browsing a registry's repositories uses its credentials: administrators, and pipeline editors of the
    projects it serves (those who may pick it)."""
    return access.is_admin(user) or access.registries(user).filter(pk=registry.pk).exists()


# Registries and base images ----------------------------------------------------------------------------------


def _registry_of(base: BaseImage, registries: list[Registry]) -> Registry | None:
    """The project's registry a base image lives in (to approve it again), by its address: the one whose path
    prefix it is under first."""
    found = [r for r in registries if base.reference.startswith(r.host + "/")]
    return max(found, key=lambda r: (base.reference.startswith(r.repository("") + "/"), len(r.prefix)), default=None)


def _registry_page(request, *, project_id=None, base_form=None, error="", status=200):
    user = request.user
    projects = list(_projects(user))
    bases: dict[int, list[BaseImage]] = {}
    for base in (
        BaseImage.objects.filter(project__in=projects).select_related("approved_by").order_by("-active", "name")
    ):
        bases.setdefault(base.project_id, []).append(base)
    sections = []
    for project in projects:
        may_edit = access.may_on_project(user, CICD_EDIT, project)
        registries = services.registries_of(project) if may_edit else []
        form = None
        if may_edit and registries:
            form = (
                base_form
                if project.pk == project_id and base_form is not None
                else BaseImageForm(registries=registries, initial={"registry": registries[0].pk}, auto_id=_ids(project))
            )
        rows = [(base, _registry_of(base, registries)) for base in bases.get(project.pk, [])]
        sections.append(
            {
                "project": project,
                "bases": rows,
                "may_edit": may_edit,
                "registries": registries,
                "form": form,
                "error": error if project.pk == project_id else "",
            }
        )
    registries = list(_registries(user))
    readable = (
        {r.pk for r in registries}
        if access.is_admin(user)
        else set(access.registries(user).values_list("pk", flat=True))
    )
    context = {
        "registries": registries,
        "readable": readable,
        "is_admin": access.is_admin(user),
        "sections": sections,
    }
    return render(request, "cicd/catalogue/registry_list.html", context, status=status)


@login_required
def registry_list(request):
    """Open to every signed-in person: it shows only their projects and the registries serving them."""
    return _registry_page(request)


def _registry_form(request, registry: Registry | None):
    _admin(request.user)
    form = RegistryForm(request.POST or None, registry=registry)
    error = ""
    if request.method == "POST" and form.is_valid():
        target = registry if registry is not None else Registry()
        target, password = form.apply(target)
        try:
            saved = services.save_registry(actor=request.user, registry=target, password=password, request=request)
        except Failure as exc:
            error = str(exc)
            if registry is not None:
                registry.refresh_from_db()
        else:
            messages.success(request, _("Registry %(name)s answered and was saved.") % {"name": saved.name})
            return redirect("cicd:registry_detail", saved.pk)
    context = {"form": form, "registry": registry, "error": error}
    return render(request, "cicd/catalogue/registry_form.html", context, status=400 if error or form.errors else 200)


_save_registry = require_recent_auth(_registry_form)


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("registry_password")
def registry_create(request):
    _admin(request.user)
    return (_save_registry if request.method == "POST" else _registry_form)(request, None)


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("registry_password")
def registry_edit(request, pk: int):
    _admin(request.user)
    registry = Registry.objects.select_related("cluster", "project__cluster").filter(pk=pk).first()
    if registry is None:
        raise Http404
    return (_save_registry if request.method == "POST" else _registry_form)(request, registry)


@login_required
def registry_delete(request, pk: int):
    _admin(request.user)
    registry = Registry.objects.filter(pk=pk).first()
    if registry is None:
        raise Http404
    return _not_post(request) or _delete_registry(request, registry)


@require_recent_auth
def _delete_registry(request, registry: Registry):
    try:
        services.delete_registry(actor=request.user, registry=registry, request=request)
    except Failure as exc:
        messages.error(request, str(exc))
        return redirect("cicd:registry_detail", registry.pk)
    messages.success(request, _("Registry %(name)s was removed.") % {"name": registry.name})
    return redirect("cicd:registry_list")


@login_required
def registry_detail(request, pk: int):
    _viewer(request.user)
    registry = _registries(request.user).filter(pk=pk).first()
    if registry is None or not _readable(request.user, registry):
        raise Http404
    error, repositories, tags, tag_count, tags_error = "", [], [], 0, ""
    try:
        repositories = services.registry_repositories(registry)
    except Failure as exc:
        error = str(exc)
    query = request.GET.get("q", "").strip()[:100]
    shown = [r for r in repositories if query.lower() in r.lower()] if query else repositories
    chosen = request.GET.get("repository", "")
    if chosen not in repositories:
        chosen = ""
    if chosen:
        try:
            tags, tag_count = services.registry_tags(registry, chosen)
        except Failure as exc:
            tags_error = str(exc)
    context = {
        "registry": registry,
        "is_admin": access.is_admin(request.user),
        "error": error,
        "repositories": shown[:REPOSITORIES_SHOWN],
        "repository_count": len(repositories),
        "more_repositories": max(0, len(shown) - REPOSITORIES_SHOWN),
        "query": query,
        "chosen": chosen,
        "tags": tags,
        "tag_count": tag_count,
        "tags_error": tags_error,
        "max_tags": services.MAX_TAGS_SHOWN,
        "pipelines": registry.pipelines.count(),
    }
    return render(request, "cicd/catalogue/registry_detail.html", context)


def _to_project(view_name: str, project_id: int):
    return redirect(f"{reverse(view_name)}#project-{project_id}")


@login_required
def base_create(request, project: int):
    project = _project(request.user, project)
    if refused := _not_post(request):
        return refused
    form = BaseImageForm(request.POST, registries=services.registries_of(project), auto_id=_ids(project))
    if not form.is_valid():
        return _registry_page(request, project_id=project.pk, base_form=form, status=400)
    data = form.cleaned_data
    try:
        base = services.approve_base(
            actor=request.user,
            project=project,
            name=data["name"],
            reference=data["reference"],
            registry=data["registry"],
            description=data["description"],
            request=request,
        )
    except Failure as exc:
        return _registry_page(request, project_id=project.pk, base_form=form, error=str(exc), status=400)
    messages.success(
        request,
        _("Base image %(name)s is approved for project %(project)s, pinned to %(digest)s.")
        % {"name": base.name, "project": project.name, "digest": base.digest},
    )
    return _to_project("cicd:registry_list", project.pk)


@login_required
def base_withdraw(request, pk: int):
    base = (
        BaseImage.objects.select_related("project__cluster").filter(pk=pk, project__in=_projects(request.user)).first()
    )
    if base is None:
        raise Http404
    if refused := _not_post(request):
        return refused
    try:
        services.withdraw_base(actor=request.user, base=base, request=request)
    except Failure as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("Base image %(name)s is withdrawn: pipelines built on it stop at their build until it is approved again.")
            % {"name": base.name},
        )
    return _to_project("cicd:registry_list", base.project_id)


# Policies and exceptions -------------------------------------------------------------------------------------


def _policy_page(request, *, project_id=None, policy_form=None, exception_form=None, error="", status=200):
    user = request.user
    projects = list(_projects(user))
    now = timezone.now()
    policies = {p.project_id: p for p in Policy.objects.filter(project__in=projects).select_related("updated_by")}
    exceptions: dict[int, list[ScanException]] = {}
    for exception in ScanException.objects.filter(project__in=projects).select_related("created_by", "revoked_by"):
        exceptions.setdefault(exception.project_id, []).append(exception)
    sections = []
    for project in projects:
        policy = policies.get(project.pk) or Policy(project=project)
        rows = exceptions.get(project.pk, [])
        active = sorted((e for e in rows if e.active), key=lambda e: e.expires_at)
        past = [e for e in rows if not e.active][:PAST_EXCEPTIONS_SHOWN]
        may = access.may_on_project(user, CICD_EXCEPTIONS, project)
        mine = project.pk == project_id
        sections.append(
            {
                "project": project,
                "policy": policy,
                "may": may,
                "policy_form": (
                    policy_form
                    if mine and policy_form is not None
                    else PolicyForm(initial=PolicyForm.initial_for(policy), auto_id=_ids(project))
                )
                if may
                else None,
                "exception_form": (
                    exception_form if mine and exception_form is not None else ExceptionForm(auto_id=_ids(project))
                )
                if may
                else None,
                "active": active,
                "past": past,
                "past_count": sum(1 for e in rows if not e.active),
                "error": error if mine else "",
                "soon": now + SOON,
            }
        )
    return render(
        request,
        "cicd/catalogue/policy_list.html",
        {"sections": sections, "max_days": services.MAX_EXCEPTION_DAYS},
        status=status,
    )


@login_required
def policy_list(request):
    """Open to every signed-in person: it shows only their projects."""
    return _policy_page(request)


@login_required
def policy_edit(request, project: int):
    project = _project(request.user, project)
    return _not_post(request) or _save_policy(request, project)


@require_recent_auth
def _save_policy(request, project):
    form = PolicyForm(request.POST, auto_id=_ids(project))
    if not form.is_valid():
        return _policy_page(request, project_id=project.pk, policy_form=form, status=400)
    try:
        services.save_policy(actor=request.user, project=project, request=request, **form.cleaned_data)
    except Failure as exc:
        return _policy_page(request, project_id=project.pk, policy_form=form, error=str(exc), status=400)
    messages.success(request, _("The CI/CD policy of project %(project)s was saved.") % {"project": project.name})
    return _to_project("cicd:policy_list", project.pk)


@login_required
def exception_create(request, project: int):
    project = _project(request.user, project)
    return _not_post(request) or _grant_exception(request, project)


@require_recent_auth
def _grant_exception(request, project):
    form = ExceptionForm(request.POST, auto_id=_ids(project))
    if not form.is_valid():
        return _policy_page(request, project_id=project.pk, exception_form=form, status=400)
    data = form.cleaned_data
    try:
        exception = services.grant_exception(
            actor=request.user,
            project=project,
            vuln_id=data["vuln_id"],
            package=data["package"],
            reason=data["justification"],
            days=data["days"],
            request=request,
        )
    except Failure as exc:
        return _policy_page(request, project_id=project.pk, exception_form=form, error=str(exc), status=400)
    messages.success(
        request,
        _("%(vuln)s no longer blocks deploys of project %(project)s until %(date)s.")
        % {
            "vuln": exception.vuln_id,
            "project": project.name,
            "date": timezone.localtime(exception.expires_at).strftime("%Y-%m-%d %H:%M"),
        },
    )
    return _to_project("cicd:policy_list", project.pk)


@login_required
def exception_revoke(request, pk: int):
    exception = (
        ScanException.objects.select_related("project__cluster", "created_by")
        .filter(pk=pk, project__in=_projects(request.user))
        .first()
    )
    if exception is None:
        raise Http404
    if refused := _not_post(request):
        return refused
    try:
        services.revoke_exception(actor=request.user, exception=exception, request=request)
    except Failure as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("The exception for %(vuln)s is revoked: the next scans of project %(project)s block on it again.")
            % {"vuln": exception.vuln_id, "project": exception.project.name},
        )
    return _to_project("cicd:policy_list", exception.project_id)


# The vulnerability database ----------------------------------------------------------------------------------


def _vulndb_page(request, *, form=None, error="", status=200):
    databases = list(VulnDatabase.objects.select_related("imported_by").order_by("-imported_at", "-pk"))
    rows = [
        {
            "db": database,
            "source": vulndb_import.source_of(database),
            "ecosystems": sorted(database.ecosystems.items()),
        }
        for database in databases
    ]
    context = {
        "rows": rows,
        "in_use": databases[0] if databases else None,
        "form": form or BundleForm(),
        "error": error,
        "max_mb": settings.KUBEMATE_CICD_MAX_UPLOAD >> 20,
        "keep": vulndb_import.KEEP,
    }
    return render(request, "cicd/catalogue/vulndb.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def vulndb(request):
    _admin(request.user)
    if request.method != "POST":
        return _vulndb_page(request)
    return _import_bundle(request)


@require_recent_auth
def _import_bundle(request):
    form = BundleForm(request.POST, request.FILES)
    if not form.is_valid():
        return _vulndb_page(request, form=form, status=400)
    upload = form.cleaned_data["bundle"]
    try:
        database = vulndb_import.import_bundle(
            actor=request.user, filename=upload.name, chunks=upload.chunks(), request=request
        )
    except Failure as exc:
        return _vulndb_page(request, form=form, error=str(exc), status=400)
    messages.success(
        request,
        _("The vulnerability database of %(date)s is imported (%(records)s records); scans use it from now on.")
        % {"date": timezone.localtime(database.data_date).strftime("%Y-%m-%d"), "records": database.records},
    )
    return redirect("cicd:vulndb")
