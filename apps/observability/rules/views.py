"""Alert rule pages: a cluster's rules with the state Prometheus gives them, the form, delete, the built-in set."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts import access
from apps.accounts.capabilities import ALERTS_RULES, ALERTS_VIEW, METRICS_QUERY
from apps.core.htmx import render
from apps.observability.models import AlertRule, BuiltinRules
from apps.observability.rules import catalogue, services
from apps.observability.rules.forms import RuleForm


def _clusters(user):
    """Clusters where ``user`` sees alerts somewhere."""
    return [c for c in access.clusters(user) if access.visible_namespaces(user, ALERTS_VIEW, cluster=c) != frozenset()]


def _cluster(user, cluster_id: int):
    cluster = access.cluster(user, cluster_id)
    if access.visible_namespaces(user, ALERTS_VIEW, cluster=cluster) == frozenset():
        raise Http404
    return cluster


def _writable_namespaces(user, cluster) -> list[str]:
    """Where ``user`` may write rules: their projects' namespaces, or every namespace the inventory knows."""
    held = access.visible_namespaces(user, ALERTS_RULES, cluster=cluster)
    return access.namespace_names(user, cluster) if held is None else sorted(held)


@login_required
def rules_home(request):
    clusters = _clusters(request.user)
    if not clusters:
        raise Http404
    return rule_list(request, clusters[0].pk)


@login_required
def rule_list(request, cluster_id: int):
    cluster = _cluster(request.user, cluster_id)
    whole_cluster = access.visible_namespaces(request.user, ALERTS_VIEW, cluster=cluster) is None
    loaded, problem = services.states(cluster)
    rules = list(services.visible(request.user, cluster))
    rows = [
        {
            "rule": r,
            "state": loaded.get((r.group_name, r.alert)),
            "template": catalogue.BY_CODE.get(r.template),
            "editable": services.may_edit(request.user, cluster, r.namespace),
        }
        for r in rules
    ]
    builtin = BuiltinRules.objects.filter(cluster=cluster).first() if whole_cluster else None
    builtin_rows = []
    if whole_cluster:
        for group, alert, expr, duration, severity, _summary in catalogue.BUILTIN:
            builtin_rows.append(
                {
                    "group": catalogue.GROUP_LABELS[group],
                    "alert": alert,
                    "expr": expr,
                    "for": duration,
                    "severity": severity,
                    "state": loaded.get((f"kubemate.builtin.{group}", alert)) if builtin else None,
                }
            )
    others = (
        sorted((s for s in loaded.values() if not s.group.startswith("kubemate.")), key=lambda s: (s.group, s.name))
        if whole_cluster
        else []
    )
    context = {
        "cluster": cluster,
        "clusters": _clusters(request.user),
        "rows": rows,
        "problem": problem,
        "whole_cluster": whole_cluster,
        "builtin": builtin,
        "builtin_rows": builtin_rows,
        "may_install": services.may_edit(request.user, cluster, None),
        "may_create": bool(_writable_namespaces(request.user, cluster)),
        "show_promql": access.may(request.user, METRICS_QUERY, cluster=cluster) or whole_cluster,
        "others": others,
        "namespaces": access.namespace_names(request.user, cluster),
    }
    return render(request, "observability/rules/rule_list.html", context)


def _form_page(request, cluster, form, rule=None, error: str = ""):
    context = {"cluster": cluster, "form": form, "rule": rule, "error": error, "units": form.units}
    return render(request, "observability/rules/rule_form.html", context, status=400 if error else 200)


@login_required
@require_http_methods(["GET", "POST"])
def rule_create(request, cluster_id: int):
    return _edit(request, _cluster(request.user, cluster_id), None)


@login_required
@require_http_methods(["GET", "POST"])
def rule_edit(request, cluster_id: int, pk: int):
    cluster = _cluster(request.user, cluster_id)
    rule = get_object_or_404(services.visible(request.user, cluster), pk=pk)
    if not services.may_edit(request.user, cluster, rule.namespace):
        raise Http404
    return _edit(request, cluster, rule)


def _edit(request, cluster, rule: AlertRule | None):
    namespaces = [rule.namespace] if rule else _writable_namespaces(request.user, cluster)
    if not namespaces:
        raise Http404
    may_write = any(access.may(request.user, METRICS_QUERY, cluster=cluster, namespace=n) for n in namespaces)
    form = RuleForm(request.POST or None, namespaces=namespaces, may_write_promql=may_write, rule=rule)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.save(actor=request.user, cluster=cluster, draft=form.draft(), rule=rule, request=request)
        except services.RuleError as exc:
            return _form_page(request, cluster, form, rule, error=str(exc))
        messages.success(
            request,
            _("Rule %(name)s was written to %(cluster)s as PrometheusRule %(object)s.")
            % {"name": saved.name, "cluster": cluster.name, "object": saved.object_name},
        )
        return redirect("observability:rule_list", cluster.pk)
    return _form_page(request, cluster, form, rule)


@login_required
@require_POST
def rule_delete(request, cluster_id: int, pk: int):
    cluster = _cluster(request.user, cluster_id)
    rule = get_object_or_404(services.visible(request.user, cluster), pk=pk)
    try:
        services.delete(actor=request.user, rule=rule, request=request)
    except services.RuleError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Rule %(name)s was removed.") % {"name": rule.name})
    return redirect("observability:rule_list", cluster.pk)


@login_required
@require_POST
def builtin_rules(request, cluster_id: int):
    cluster = _cluster(request.user, cluster_id)
    try:
        if request.POST.get("action") == "remove":
            services.remove_builtin(actor=request.user, cluster=cluster, request=request)
            messages.success(
                request, _("The built-in rules were removed from %(cluster)s.") % {"cluster": cluster.name}
            )
        else:
            namespace = request.POST.get("namespace", "").strip()
            services.install_builtin(actor=request.user, cluster=cluster, namespace=namespace, request=request)
            messages.success(
                request,
                _("The built-in rules were written to %(cluster)s in namespace %(namespace)s.")
                % {"cluster": cluster.name, "namespace": namespace},
            )
    except services.RuleError as exc:
        messages.error(request, str(exc))
    return redirect("observability:rule_list", cluster.pk)
