"""The platform's backups pages (``backups.admin``): storage targets (checked on save, keys write-only), each
cluster's etcd access and Velero namespace, Kubemate's own database plans and dumps. Every change asks for the
password again (``require_recent_auth``); what the storage or etcd said comes back as a sentence."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from apps.backups import access, freshness, pages, services
from apps.backups.forms import EtcdAccessForm, TargetForm, VeleroNamespaceForm
from apps.backups.models import Backup, EtcdAccess, Kind, Plan, Target
from apps.clusters.models import Cluster
from apps.core.deferred import Failure
from apps.core.htmx import render
from apps.core.reauth import require_recent_auth

DATABASE_BACKUPS_SHOWN = 30


@login_required
def platform(request):
    user = request.user
    access.admin(user)
    database_plans = list(Plan.objects.filter(kind=Kind.DATABASE).select_related("target", "created_by"))
    clusters = list(Cluster.objects.select_related("etcd_access").order_by("name"))
    context = {
        "targets": list(Target.objects.select_related("created_by").order_by("name")),
        "clusters": [
            {
                "cluster": c,
                "etcd": getattr(c, "etcd_access", None),
                "form": VeleroNamespaceForm(initial={"namespace": c.velero_namespace}, auto_id=f"id_c{c.pk}_%s"),
            }
            for c in clusters
        ],
        "rows": freshness.plan_rows(user, database_plans),
        "database_backups": list(
            Backup.objects.filter(kind=Kind.DATABASE)
            .select_related("plan", "target", "actor")
            .order_by("-started_at", "-pk")[:DATABASE_BACKUPS_SHOWN]
        ),
        "started": pages.started_job(request),
    }
    return render(request, "backups/platform.html", context)


def _target_form(request, target: Target | None):
    access.admin(request.user)
    form = TargetForm(request.POST or None, target=target)
    error = ""
    if request.method == "POST" and form.is_valid():
        changed, access_key, secret_key = form.apply(target if target is not None else Target())
        try:
            saved = services.save_target(
                actor=request.user, target=changed, access_key=access_key, secret_key=secret_key, request=request
            )
        except Failure as exc:
            error = str(exc)
            if target is not None:
                target.refresh_from_db()
        else:
            messages.success(request, _("Storage target %(name)s answered and was saved.") % {"name": saved.name})
            return pages.to_platform()
    context = {"form": form, "target": target, "error": error}
    return render(request, "backups/target_form.html", context, status=400 if error or form.errors else 200)


_save_target = require_recent_auth(_target_form)


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("access_key", "secret_key")
def target_create(request):
    access.admin(request.user)
    return (_save_target if request.method == "POST" else _target_form)(request, None)


def _target(pk: int) -> Target:
    found = Target.objects.filter(pk=pk).first()
    if found is None:
        raise Http404
    return found


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("access_key", "secret_key")
def target_edit(request, pk: int):
    access.admin(request.user)
    target = _target(pk)
    return (_save_target if request.method == "POST" else _target_form)(request, target)


@login_required
def target_delete(request, pk: int):
    access.admin(request.user)
    target = _target(pk)
    return pages.not_post(request) or _delete_target(request, target)


@require_recent_auth
def _delete_target(request, target: Target):
    try:
        services.delete_target(actor=request.user, target=target, request=request)
    except Failure as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Storage target %(name)s was removed.") % {"name": target.name})
    return pages.to_platform()


@login_required
def target_check(request, pk: int):
    """Probe the target again (write, read and delete an object) and count what it holds."""
    access.admin(request.user)
    target = _target(pk)
    refused = pages.not_post(request)
    if refused:
        return refused
    error = services.check_target(target)
    if error:
        messages.error(request, _("Storage target %(name)s: %(error)s") % {"name": target.name, "error": error})
    else:
        messages.success(request, _("Storage target %(name)s answered.") % {"name": target.name})
    return pages.to_platform()


def _etcd_form(request, found: Cluster):
    access.admin(request.user)
    current = EtcdAccess.objects.filter(cluster=found).first()
    form = EtcdAccessForm(request.POST or None, access=current)
    error = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.save_etcd_access(
                actor=request.user,
                cluster=found,
                endpoints=data["endpoints"],
                ca_pem=data["ca_pem"].strip(),
                cert_pem=data["cert_pem"].strip(),
                key_pem=data["key_pem"].strip(),
                request=request,
            )
        except Failure as exc:
            error = str(exc)
        else:
            messages.success(request, _("etcd of %(cluster)s answered; access saved.") % {"cluster": found.name})
            return pages.to_platform()
    context = {"form": form, "cluster": found, "etcd_access": current, "error": error}
    return render(request, "backups/etcd_access.html", context, status=400 if error or form.errors else 200)


_save_etcd = require_recent_auth(_etcd_form)


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("key_pem")
def etcd_access(request, cluster_id: int):
    access.admin(request.user)
    found = Cluster.objects.filter(pk=cluster_id).first()
    if found is None:
        raise Http404
    return (_save_etcd if request.method == "POST" else _etcd_form)(request, found)


@login_required
def velero_namespace(request, cluster_id: int):
    access.admin(request.user)
    found = Cluster.objects.filter(pk=cluster_id).first()
    if found is None:
        raise Http404
    return pages.not_post(request) or _set_velero_namespace(request, found)


@require_recent_auth
def _set_velero_namespace(request, found: Cluster):
    form = VeleroNamespaceForm(request.POST, auto_id=f"id_c{found.pk}_%s")
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return pages.to_platform()
    try:
        services.set_velero_namespace(
            actor=request.user, cluster=found, namespace=form.cleaned_data["namespace"], request=request
        )
    except Failure as exc:
        messages.error(request, str(exc))
    else:
        if found.velero_namespace:
            messages.success(
                request,
                _("Velero of %(cluster)s runs in namespace %(namespace)s.")
                % {"cluster": found.name, "namespace": found.velero_namespace},
            )
        else:
            messages.success(request, _("Velero is not used in %(cluster)s any more.") % {"cluster": found.name})
    return pages.to_platform()
