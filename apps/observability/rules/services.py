"""Alert rules: saved in Kubemate, written to the cluster as PrometheusRule objects as the person, audited.

A rule lives in a namespace and watches that namespace only: its expression is narrowed to it by the PromQL
parser (apps.observability.promql.scope), whoever writes it, and its alerts carry ``namespace`` so the alerts
pages and Alertmanager routes see whose they are. The built-in set (catalogue.BUILTIN) is cluster-wide and only
for those who hold the capability for the whole cluster.

Order of work: check everything, write the object to the cluster as the person (the cluster's RBAC decides), then
save the row and the audit event in one transaction; if that fails, the object just written is deleted again, so
a failure leaves the cluster and Kubemate as they were.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from apps.accounts import access
from apps.accounts.capabilities import ALERTS_RULES, ALERTS_VIEW
from apps.clusters import kube, values
from apps.core import audit
from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D
from apps.observability import endpoints, prometheus, promql
from apps.observability.models import AlertRule, BuiltinRules, duration
from apps.observability.rules import catalogue

log = logging.getLogger(__name__)

MANAGED_BY = {"app.kubernetes.io/managed-by": "kubemate"}
BUILTIN_OBJECT = "kubemate-builtin"
ALERT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
MAX_FOR_SECONDS = 24 * 3600
SUMMARY_MAX = 300


class RuleError(Failure):
    """The rule cannot be saved, written or removed; the message is the sentence to show."""


@dataclass(frozen=True)
class Draft:
    """What the form asks for, checked by ``build``."""

    namespace: str
    name: str
    alert: str
    severity: str
    for_seconds: int
    summary: str = ""
    template: str = ""
    workload: str = ""
    threshold: float | None = None
    expr: str = ""  # written in PromQL (template "")


def build(draft: Draft) -> tuple[str, str, dict]:
    """(expression, summary, params) for ``draft``, or RuleError with the sentence saying what is wrong."""
    if not values.is_dns_label(draft.namespace):
        raise RuleError(_("Choose a namespace."))
    if not values.is_dns_label(draft.name) or len(draft.name) > 50:
        raise RuleError(_("Name the rule with at most 50 lower-case letters, digits and '-'."))
    if not ALERT_NAME.match(draft.alert):
        raise RuleError(_("Name the alert with letters, digits and '_', starting with a letter (e.g. AppMemoryHigh)."))
    if draft.severity not in AlertRule.Severity.values:
        raise RuleError(_("Choose a severity."))
    if not 0 <= draft.for_seconds <= MAX_FOR_SECONDS:
        raise RuleError(_("The condition must hold between 0 seconds and 24 hours before the alert fires."))
    summary = (draft.summary or "").strip()
    # Prometheus runs annotations as Go templates, which can run queries ({{ query "..." }}): a person's text is
    # taken as text only.
    if "{{" in summary or "}}" in summary:
        raise RuleError(_("The summary cannot hold '{{' or '}}'."))
    if len(summary) > SUMMARY_MAX:
        raise RuleError(_("Keep the summary under %(count)s characters.") % {"count": SUMMARY_MAX})
    if draft.template:
        template = catalogue.BY_CODE.get(draft.template)
        if template is None:
            raise RuleError(_("Choose what the rule watches."))
        if not values.is_dns_label(draft.workload):
            raise RuleError(_("Name the workload or app the rule watches (as in Kubernetes, e.g. payments)."))
        threshold = draft.threshold
        if threshold is None or not template.low <= threshold <= template.high:
            raise RuleError(
                _("Choose a threshold between %(low)s and %(high)s.")
                % {"low": catalogue.number(template.low), "high": catalogue.number(template.high)}
            )
        number = catalogue.number(threshold)
        expr = template.expr.format(namespace=draft.namespace, workload=draft.workload, threshold=number)
        summary = summary or template.summary.format(workload=draft.workload, threshold=number)
        params = {"workload": draft.workload, "threshold": threshold}
    else:
        expr, params = draft.expr.strip(), {}
        if not expr:
            raise RuleError(_("Write the rule's expression in PromQL."))
        summary = summary or _("%(alert)s fires in %(namespace)s.") % {
            "alert": draft.alert,
            "namespace": draft.namespace,
        }

    try:
        expr = promql.scope(expr, [draft.namespace])
    except promql.PromQLError as exc:
        raise RuleError(str(exc)) from None
    return expr, summary, params


def manifest(rule: AlertRule) -> dict:
    """The PrometheusRule holding ``rule`` (its spec.groups are Prometheus's own rule-file groups)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": rule.object_name,
            "namespace": rule.namespace,
            "labels": {**MANAGED_BY, "kubemate.io/rule": rule.name},
        },
        "spec": {"groups": [group(rule)]},
    }


def group(rule: AlertRule) -> dict:
    return {
        "name": rule.group_name,
        "rules": [
            {
                "alert": rule.alert,
                "expr": rule.expr,
                "for": duration(rule.for_seconds),
                "labels": {"severity": str(rule.severity), "namespace": rule.namespace, "kubemate_rule": rule.name},
                "annotations": {"summary": rule.summary},
            }
        ],
    }


def builtin_manifest(namespace: str) -> dict:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": BUILTIN_OBJECT,
            "namespace": namespace,
            "labels": {**MANAGED_BY, "kubemate.io/rule-set": "builtin"},
            "annotations": {"kubemate.io/version": str(catalogue.BUILTIN_VERSION)},
        },
        "spec": {"groups": catalogue.builtin_groups()},
    }


def _refused(exc: kube.KubeError, namespace: str) -> str:
    if isinstance(exc, kube.Forbidden):
        return D(
            N_("Kubernetes refused: you may not change alert rules in namespace %(namespace)s."), namespace=namespace
        )
    if isinstance(exc, kube.NotFound):
        return D(
            N_(
                "This cluster has no PrometheusRule resource (monitoring.coreos.com/v1): install the Prometheus "
                "Operator's CRDs first."
            )
        )
    return str(exc)


# --- reading ---------------------------------------------------------------------------------------------------


def visible(user, cluster):
    """The rules of ``cluster`` in the namespaces ``user`` may see alerts of."""
    namespaces = access.visible_namespaces(user, ALERTS_VIEW, cluster=cluster)
    rules = AlertRule.objects.filter(cluster=cluster).select_related("created_by")
    return rules if namespaces is None else rules.filter(namespace__in=namespaces)


def may_edit(user, cluster, namespace: str | None) -> bool:
    return access.may(user, ALERTS_RULES, cluster=cluster, namespace=namespace)


def states(cluster) -> tuple[dict[tuple[str, str], prometheus.RuleState], str]:
    """Prometheus's view of the rules, by (group, alert name); and the sentence when it cannot say."""
    try:
        found = prometheus.rules(endpoints.prometheus(cluster))
    except prometheus.PrometheusError as exc:
        return {}, str(exc)
    return {(s.group, s.name): s for s in found}, ""


# --- writing ---------------------------------------------------------------------------------------------------


def save(*, actor, cluster, draft: Draft, rule: AlertRule | None = None, request=None) -> AlertRule:
    """Create (``rule`` None) or change a rule: checked, written to the cluster as ``actor``, saved and audited."""
    if rule is not None and (rule.namespace, rule.name) != (draft.namespace, draft.name):
        raise RuleError(_("A rule keeps its namespace and name; make a new rule instead."))
    if not may_edit(actor, cluster, draft.namespace):
        raise RuleError(
            _("You may not change alert rules in namespace %(namespace)s.") % {"namespace": draft.namespace}
        )
    expr, summary, params = build(draft)
    if rule is None and AlertRule.objects.filter(cluster=cluster, namespace=draft.namespace, name=draft.name).exists():
        raise RuleError(_("A rule named %(name)s already exists in %(namespace)s.") % draft.__dict__)
    row = rule or AlertRule(cluster=cluster, namespace=draft.namespace, name=draft.name, created_by=actor)
    before = _audit_view(rule) if rule else None
    row.alert, row.expr, row.for_seconds = draft.alert, expr, draft.for_seconds
    row.severity, row.summary, row.template, row.params = draft.severity, summary, draft.template, params
    action = "observability.rule.update" if rule else "observability.rule.create"
    try:
        with kube.client(cluster, as_user=actor) as k:
            k.apply(manifest(row))
    except kube.KubeError as exc:
        sentence = _refused(exc, draft.namespace)
        _record(actor, action, row, request=request, error=sentence)
        if rule:
            rule.refresh_from_db()
        raise RuleError(sentence) from None
    try:
        with transaction.atomic():
            row.save()
            detail = _audit_view(row) | ({"before": before} if before else {})
            _record(actor, action, row, request=request, detail=detail)
    except IntegrityError:
        if rule is None:
            _undo(cluster, actor, row)
        raise RuleError(_("A rule named %(name)s already exists in %(namespace)s.") % draft.__dict__) from None
    return row


def delete(*, actor, rule: AlertRule, request=None) -> None:
    if not may_edit(actor, rule.cluster, rule.namespace):
        raise RuleError(_("You may not change alert rules in namespace %(namespace)s.") % {"namespace": rule.namespace})
    try:
        with kube.client(rule.cluster, as_user=actor) as k:
            k.delete("PrometheusRule", rule.namespace, rule.object_name)
    except kube.KubeError as exc:
        sentence = _refused(exc, rule.namespace)
        _record(actor, "observability.rule.delete", rule, request=request, error=sentence)
        raise RuleError(sentence) from None
    with transaction.atomic():
        _record(actor, "observability.rule.delete", rule, request=request, detail=_audit_view(rule))
        rule.delete()


def install_builtin(*, actor, cluster, namespace: str, request=None) -> BuiltinRules:
    """Write (or bring up to date) the built-in set in ``namespace``: cluster-wide, so cluster-wide holders only."""
    if not may_edit(actor, cluster, None):
        raise RuleError(_("Only those who manage alert rules for the whole cluster install the built-in rules."))
    if not values.is_dns_label(namespace):
        raise RuleError(_("Choose a namespace."))
    current = BuiltinRules.objects.filter(cluster=cluster).first()
    try:
        with kube.client(cluster, as_user=actor) as k:
            k.apply(builtin_manifest(namespace))
            if current and current.namespace != namespace:
                k.delete("PrometheusRule", current.namespace, BUILTIN_OBJECT)
    except kube.KubeError as exc:
        sentence = _refused(exc, namespace)
        _record_builtin(actor, cluster, namespace, "observability.rules.builtin_install", request, error=sentence)
        raise RuleError(sentence) from None
    with transaction.atomic():
        row, _created = BuiltinRules.objects.update_or_create(
            cluster=cluster,
            defaults={"namespace": namespace, "version": catalogue.BUILTIN_VERSION, "installed_by": actor},
        )
        _record_builtin(actor, cluster, namespace, "observability.rules.builtin_install", request)
    return row


def remove_builtin(*, actor, cluster, request=None) -> None:
    current = BuiltinRules.objects.filter(cluster=cluster).first()
    if current is None:
        return
    if not may_edit(actor, cluster, None):
        raise RuleError(_("Only those who manage alert rules for the whole cluster install the built-in rules."))
    try:
        with kube.client(cluster, as_user=actor) as k:
            k.delete("PrometheusRule", current.namespace, BUILTIN_OBJECT)
    except kube.KubeError as exc:
        sentence = _refused(exc, current.namespace)
        _record_builtin(
            actor, cluster, current.namespace, "observability.rules.builtin_remove", request, error=sentence
        )
        raise RuleError(sentence) from None
    with transaction.atomic():
        _record_builtin(actor, cluster, current.namespace, "observability.rules.builtin_remove", request)
        current.delete()


def _undo(cluster, actor, row: AlertRule) -> None:
    try:
        with kube.client(cluster, as_user=actor) as k:
            k.delete("PrometheusRule", row.namespace, row.object_name)
    except kube.KubeError:
        log.warning("could not remove a rule object after a failed save", extra={"rule": str(row)})


def _audit_view(rule: AlertRule) -> dict:
    return {
        "alert": rule.alert,
        "expr": rule.expr,
        "for": duration(rule.for_seconds),
        "severity": rule.severity,
        "template": rule.template,
    }


def _record(actor, action: str, rule: AlertRule, *, request=None, detail=None, error: str = "") -> None:
    audit.record(
        actor=actor,
        action=action,
        result="failure" if error else "success",
        cluster=rule.cluster.name,
        namespace=rule.namespace,
        kind="PrometheusRule",
        name=rule.object_name,
        detail={**(detail or {}), **({"error": error} if error else {})},
        request=request,
    )


def _record_builtin(actor, cluster, namespace: str, action: str, request, *, error: str = "") -> None:
    audit.record(
        actor=actor,
        action=action,
        result="failure" if error else "success",
        cluster=cluster.name,
        namespace=namespace,
        kind="PrometheusRule",
        name=BUILTIN_OBJECT,
        detail={"version": catalogue.BUILTIN_VERSION, **({"error": error} if error else {})},
        request=request,
    )
