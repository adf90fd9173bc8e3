"""Cluster registry pages: register, settings (and credential replacement), delete, connection test."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.capabilities import CLUSTERS_MANAGE
from apps.accounts.decorators import capability_required
from apps.clusters import values
from apps.clusters.models import Cluster
from apps.clusters.registry import services as services_registry
from apps.clusters.registry.forms import ENVIRONMENT_SUGGESTIONS, ClusterForm, CredentialsForm
from apps.clusters.registry.services import RegistryError
from apps.core.htmx import render
from apps.core.reauth import require_recent_auth
from apps.observability import alertmanager, endpoints, prometheus

# Never shown in error reports: Django replaces these POST values with stars.
SENSITIVE_FIELDS = ("kubeconfig_text", "token", "ca_pem")
FORM_TEMPLATE = "clusters/registry/cluster_form.html"
TEST_TEMPLATE = "clusters/registry/connection_test.html"


def _report_prometheus(request, cluster: Cluster) -> None:
    """Say at once whether the Prometheus URL just saved answers (saving does not depend on it)."""
    if not cluster.prometheus_url:
        return
    problem = prometheus.probe(endpoints.prometheus(cluster))
    if problem:
        messages.warning(
            request, _("%(problem)s Charts and automatic canary steps need it to answer.") % {"problem": problem}
        )
    else:
        messages.success(
            request, _("Prometheus at %(url)s answers queries.") % {"url": endpoints.shown_url(cluster.prometheus_url)}
        )


def _report_alertmanager(request, cluster: Cluster) -> None:
    """Say at once whether the Alertmanager URL just saved answers (saving does not depend on it)."""
    if not cluster.alertmanager_url:
        return
    problem = alertmanager.probe(endpoints.alertmanager(cluster))
    if problem:
        messages.warning(request, _("%(problem)s The alerts pages need it to answer.") % {"problem": problem})
    else:
        messages.success(
            request,
            _("Alertmanager at %(url)s answers.") % {"url": endpoints.shown_url(cluster.alertmanager_url)},
        )


def _form_context(form, cluster=None) -> dict:
    return {"form": form, "cluster": cluster, "environments": ENVIRONMENT_SUGGESTIONS}


@capability_required(CLUSTERS_MANAGE)
@sensitive_post_parameters(*SENSITIVE_FIELDS)
@require_recent_auth
@require_http_methods(["GET", "POST"])
def registry_add(request):
    form = ClusterForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            cluster = services_registry.create_cluster(
                actor=request.user,
                settings=form.settings(),
                credentials=form.cleaned_data["credentials"],
                request=request,
            )
        except RegistryError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                _("Cluster %(name)s is registered (Kubernetes %(version)s).")
                % {"name": cluster.name, "version": cluster.kubernetes_version},
            )
            _report_prometheus(request, cluster)
            _report_alertmanager(request, cluster)
            return redirect("clusters:registry_settings", cluster.pk)
    return render(request, FORM_TEMPLATE, _form_context(form))


@capability_required(CLUSTERS_MANAGE)
@sensitive_post_parameters(*SENSITIVE_FIELDS)
@require_recent_auth
@require_http_methods(["GET", "POST"])
def registry_settings(request, cluster_id: int):
    cluster = get_object_or_404(Cluster, pk=cluster_id)
    form = ClusterForm(request.POST or None, request.FILES or None, user=request.user, instance=cluster)
    if request.method == "POST" and form.is_valid():
        credentials = form.cleaned_data["credentials"]
        try:
            # Credentials first: when the cluster refuses them, nothing is saved.
            if credentials is not None:
                cluster = services_registry.replace_credentials(
                    actor=request.user,
                    cluster=cluster,
                    credentials=credentials,
                    allow_link_local=form.cleaned_data["allow_link_local"],
                    request=request,
                )
            changed = services_registry.update_cluster(
                actor=request.user, cluster=cluster, settings=form.settings(), request=request
            )
        except RegistryError as exc:
            form.add_error(None, str(exc))
        else:
            text = _("The credentials were replaced and the settings saved.") if credentials else _("Settings saved.")
            messages.success(request, text)
            if {"prometheus_url", "prometheus_auth_encrypted"} & set(changed):
                _report_prometheus(request, cluster)
            if {"alertmanager_url", "alertmanager_auth_encrypted"} & set(changed):
                _report_alertmanager(request, cluster)
            return redirect("clusters:registry_settings", cluster.pk)
    return render(request, FORM_TEMPLATE, _form_context(form, cluster))


@capability_required(CLUSTERS_MANAGE)
@require_recent_auth
@require_http_methods(["GET", "POST"])
def registry_delete(request, cluster_id: int):
    cluster = get_object_or_404(Cluster, pk=cluster_id)
    error = ""
    if request.method == "POST":
        if request.POST.get("confirm_name", "").strip() != cluster.name:
            error = _("Type the cluster's name, %(name)s, to confirm.") % {"name": cluster.name}
        else:
            try:
                services_registry.delete_cluster(actor=request.user, cluster=cluster, request=request)
            except RegistryError as exc:
                error = str(exc)
            else:
                messages.success(request, _("Cluster %(name)s was removed from Kubemate.") % {"name": cluster.name})
                return redirect("clusters:cluster_list")
    context = {
        "cluster": cluster,
        "error": error,
        "projects": list(cluster.projects.order_by("name").values_list("name", flat=True)),
        "bindings": cluster.binding_set.count(),
        "resources": cluster.resources.count(),
    }
    return render(request, "clusters/registry/cluster_delete.html", context, status=400 if error else 200)


def _error_sentences(form) -> list[str]:
    sentences = [str(e) for e in form.non_field_errors()]
    for name, errors in form.errors.items():
        if name != "__all__":
            sentences += [f"{form.fields[name].label}: {e}" for e in errors]
    return sentences


@capability_required(CLUSTERS_MANAGE)
@sensitive_post_parameters(*SENSITIVE_FIELDS)
@require_POST
def registry_test(request):
    """Test credentials typed into the form, before anything is saved."""
    form = CredentialsForm(request.POST, request.FILES, user=request.user)
    context: dict = {"report": None, "errors": []}
    if form.is_valid():
        name = request.POST.get("name", "").strip()
        context["report"] = services_registry.probe_credentials(
            actor=request.user,
            credentials=form.cleaned_data["credentials"],
            allow_link_local=form.cleaned_data["allow_link_local"],
            name=name if values.is_dns_label(name) else "",
            request=request,
        )
    else:
        context["errors"] = _error_sentences(form)
    return render(request, TEST_TEMPLATE, context, partial="result")


@capability_required(CLUSTERS_MANAGE)
@require_POST
def registry_test_cluster(request, cluster_id: int):
    """Test a registered cluster's stored credentials."""
    cluster = get_object_or_404(Cluster, pk=cluster_id)
    report = services_registry.probe_cluster(actor=request.user, cluster=cluster, request=request)
    return render(request, TEST_TEMPLATE, {"report": report, "errors": [], "cluster": cluster}, partial="result")
