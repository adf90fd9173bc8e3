"""The backups pages of the clusters: every cluster's plans and how fresh their newest good backup is (home), one
cluster's plans and etcd snapshots (cluster), and the plan forms (etcd, Velero, Kubemate's database).

Views authorize (access.py: 404 for what a person may not see or do, as for what is missing), validate a form,
call a service (services.py, velero/services.py), render. Refusals, and what the cluster or the storage said, come
back as a sentence, never as a server error. Actions with a dangerous capability (backups.admin for database
plans) need a recent password proof, which the confirmation dialog sends with the form (``require_recent_auth``).

Elsewhere: the Velero part of a cluster's page, restores and logs (velero/views.py), the etcd restore runbook
(runbook.py), the platform's storage targets, etcd access and Velero namespaces (platform/views.py)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from apps.accounts.capabilities import BACKUPS_RUN, BACKUPS_SCHEDULE, BACKUPS_VIEW
from apps.backups import access, freshness, pages, services
from apps.backups.forms import PlanForm
from apps.backups.models import Backup, EtcdAccess, Kind, Plan, Target
from apps.backups.velero import services as velero
from apps.clusters import kube
from apps.clusters.models import Cluster
from apps.core.deferred import Failure
from apps.core.htmx import render
from apps.core.reauth import require_recent_auth

SNAPSHOTS_SHOWN = 50


# Home --------------------------------------------------------------------------------------------------------------


@login_required
def home(request):
    user = request.user
    access.viewer(user)
    clusters = access.clusters(user)
    plans = access.visible_plans(
        user,
        Plan.objects.filter(cluster__in=clusters)
        .exclude(kind=Kind.DATABASE)
        .select_related("cluster", "target")
        .order_by("kind", "name"),
    )
    is_admin = access.is_admin(user)
    database_plans = (
        list(Plan.objects.filter(kind=Kind.DATABASE).select_related("target").order_by("name")) if is_admin else []
    )
    rows = freshness.plan_rows(user, plans + database_plans)
    by_cluster: dict[int, list[freshness.PlanRow]] = {}
    for row in rows:
        if row.plan.cluster_id is not None:
            by_cluster.setdefault(row.plan.cluster_id, []).append(row)
    sections = [
        {
            "cluster": cluster,
            "rows": by_cluster.get(cluster.pk, []),
            "stale": sum(1 for r in by_cluster.get(cluster.pk, []) if r.state in {"stale", "none"}),
        }
        for cluster in clusters
    ]
    context = {
        "sections": sections,
        "is_admin": is_admin,
        "targets": list(Target.objects.order_by("name")) if is_admin else [],
        "database_rows": [r for r in rows if r.plan.kind == Kind.DATABASE],
    }
    return render(request, "backups/home.html", context)


# A cluster ---------------------------------------------------------------------------------------------------------


@login_required
def cluster(request, cluster_id: int):
    user = request.user
    found = access.cluster(user, cluster_id)
    plans = access.visible_plans(
        user, Plan.objects.filter(cluster=found).select_related("cluster", "target").order_by("kind", "name")
    )
    whole = access.on_cluster(user, BACKUPS_VIEW, found)
    snapshots = []
    if whole:
        snapshots = list(
            Backup.objects.filter(cluster=found, kind=Kind.ETCD)
            .select_related("plan", "target", "actor")
            .order_by("-started_at", "-pk")[:SNAPSHOTS_SHOWN]
        )
    context = {
        "cluster": found,
        "rows": freshness.plan_rows(user, plans),
        "whole": whole,
        "snapshots": snapshots,
        "has_good_snapshot": any(s.is_good for s in snapshots),
        "etcd_access": EtcdAccess.objects.filter(cluster=found).first() if whole else None,
        "may_etcd_plan": access.on_cluster(user, BACKUPS_SCHEDULE, found),
        "may_velero_plan": bool(found.velero_namespace) and access.anywhere_in(user, BACKUPS_SCHEDULE, found),
        "has_targets": Target.objects.exists(),
        "is_admin": access.is_admin(user),
        "started": pages.started_job(request),
    }
    return render(request, "backups/cluster.html", context)


# Plans -------------------------------------------------------------------------------------------------------------


def _plan_form(request, *, kind: str, cluster: Cluster | None, plan: Plan | None):
    user = request.user
    choices, other = ([], False)
    if kind == Kind.VELERO:
        choices, other = access.namespace_choices(user, cluster, BACKUPS_SCHEDULE)
        if plan is not None and not other:
            choices = sorted(set(choices) | set(plan.namespaces) - {"*"})
    form = PlanForm(request.POST or None, kind=kind, plan=plan, namespaces=choices, allow_other=other)
    error = ""
    if request.method == "POST" and form.is_valid():
        clash = Plan.objects.filter(cluster=cluster, name=form.cleaned_data["name"])
        if cluster is None:
            clash = clash.filter(kind=Kind.DATABASE)
        if plan is not None:
            clash = clash.exclude(pk=plan.pk)
        if clash.exists():
            form.add_error("name", _("A plan called %(name)s exists already.") % {"name": form.cleaned_data["name"]})
        else:
            target = form.apply(plan if plan is not None else Plan(kind=kind, cluster=cluster))
            try:
                if kind == Kind.VELERO:
                    saved = velero.save_plan(actor=user, plan=target, request=request)
                else:
                    saved = services.save_plan(actor=user, plan=target, request=request)
            except (Failure, kube.KubeError) as exc:
                error = str(exc)
            else:
                messages.success(request, _("Plan %(name)s saved.") % {"name": saved.name})
                return pages.to_platform() if cluster is None else pages.to_cluster(cluster.pk)
    context = {
        "form": form,
        "kind": kind,
        "kind_label": Kind(kind).label,
        "cluster": cluster,
        "plan": plan,
        "error": error,
        "has_targets": Target.objects.exists(),
    }
    return render(request, "backups/plan_form.html", context, status=400 if error or form.errors else 200)


_save_database_plan = require_recent_auth(_plan_form)


@login_required
@require_http_methods(["GET", "POST"])
def plan_create(request, cluster_id: int):
    """A new etcd (``?kind=etcd``) or Velero (``?kind=velero``) plan of a cluster."""
    user = request.user
    found = access.cluster(user, cluster_id)
    kind = request.GET.get("kind") or request.POST.get("kind") or Kind.ETCD
    if kind == Kind.ETCD:
        allowed = access.on_cluster(user, BACKUPS_SCHEDULE, found)
    elif kind == Kind.VELERO:
        allowed = bool(found.velero_namespace) and access.anywhere_in(user, BACKUPS_SCHEDULE, found)
    else:
        allowed = False
    if not allowed:
        raise Http404
    return _plan_form(request, kind=kind, cluster=found, plan=None)


@login_required
@require_http_methods(["GET", "POST"])
def database_plan_create(request):
    access.admin(request.user)
    form = _save_database_plan if request.method == "POST" else _plan_form
    return form(request, kind=Kind.DATABASE, cluster=None, plan=None)


@login_required
@require_http_methods(["GET", "POST"])
def plan_edit(request, pk: int):
    plan = access.plan(request.user, pk, BACKUPS_SCHEDULE)
    form = _save_database_plan if plan.kind == Kind.DATABASE and request.method == "POST" else _plan_form
    return form(request, kind=plan.kind, cluster=plan.cluster, plan=plan)


@login_required
def plan_delete(request, pk: int):
    plan = access.plan(request.user, pk, BACKUPS_SCHEDULE)
    refused = pages.not_post(request)
    if refused:
        return refused
    if plan.kind == Kind.DATABASE:
        return _delete_database_plan(request, plan)
    return _delete_plan(request, plan)


def _delete_plan(request, plan: Plan):
    try:
        if plan.kind == Kind.VELERO:
            velero.delete_plan(actor=request.user, plan=plan, request=request)
        else:
            services.delete_plan(actor=request.user, plan=plan, request=request)
    except (Failure, kube.KubeError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Plan %(name)s deleted.") % {"name": plan.name})
    return pages.to_platform() if plan.cluster_id is None else pages.to_cluster(plan.cluster_id)


_delete_database_plan = require_recent_auth(_delete_plan)


@login_required
def plan_run(request, pk: int):
    plan = access.plan(request.user, pk, BACKUPS_RUN)
    refused = pages.not_post(request)
    if refused:
        return refused
    if plan.kind == Kind.DATABASE:
        return _run_database_plan(request, plan)
    return _run_plan(request, plan)


def _run_plan(request, plan: Plan):
    try:
        if plan.kind == Kind.VELERO:
            backup = velero.run_backup(actor=request.user, cluster=plan.cluster, plan=plan, request=request)
        else:
            backup = services.start_backup(actor=request.user, plan=plan, request=request)
    except (Failure, kube.KubeError) as exc:
        messages.error(request, str(exc))
        return pages.to_platform() if plan.cluster_id is None else pages.to_cluster(plan.cluster_id)
    messages.success(request, _("Backup %(name)s started.") % {"name": backup.name})
    if plan.cluster_id is None:
        return pages.to_platform(backup.job_id)
    return pages.to_cluster(plan.cluster_id, backup.job_id)


_run_database_plan = require_recent_auth(_run_plan)
