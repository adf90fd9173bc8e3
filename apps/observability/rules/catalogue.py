"""The ready-made alert rules: the built-in set a cluster administrator installs, and the templates a project's
rules are made from ("memory of app X above 60 % for 5 min").

Metric names are those of the usual exporters (cAdvisor through the kubelet, kube-state-metrics, node-exporter, the
apiserver itself, and the http_* metrics of apps instrumented with a Prometheus client). Templates take a workload
name and a threshold, both checked before they are put into PromQL: names as Kubernetes DNS labels, thresholds as
numbers in a range, so nothing a person types becomes PromQL text.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

BUILTIN_VERSION = 1

# (group, alert, expression, for, severity, summary with {{ $labels.x }} as Prometheus templates it)
BUILTIN: tuple[tuple[str, str, str, str, str, str], ...] = (
    (
        "node",
        "KubemateNodeNotReady",
        'kube_node_status_condition{condition="Ready",status="true"} == 0',
        "5m",
        "critical",
        "Node {{ $labels.node }} is not ready.",
    ),
    (
        "node",
        "KubemateNodeMemoryPressure",
        'kube_node_status_condition{condition="MemoryPressure",status="true"} == 1',
        "5m",
        "warning",
        "Node {{ $labels.node }} is short of memory.",
    ),
    (
        "node",
        "KubemateNodeDiskAlmostFull",
        '100 * node_filesystem_avail_bytes{fstype!~"tmpfs|overlay"}'
        ' / node_filesystem_size_bytes{fstype!~"tmpfs|overlay"} < 10',
        "10m",
        "warning",
        "Less than 10 % free on {{ $labels.mountpoint }} of {{ $labels.instance }}.",
    ),
    (
        "pod",
        "KubematePodCrashLooping",
        "increase(kube_pod_container_status_restarts_total[15m]) > 3",
        "0s",
        "warning",
        "Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} restarted more than 3 "
        "times in 15 minutes.",
    ),
    (
        "pod",
        "KubematePodNotReady",
        'sum by (namespace, pod) (kube_pod_status_phase{phase=~"Pending|Unknown|Failed"}) > 0',
        "15m",
        "warning",
        "Pod {{ $labels.namespace }}/{{ $labels.pod }} has not been ready for 15 minutes.",
    ),
    (
        "workload",
        "KubemateDeploymentReplicasMissing",
        "kube_deployment_spec_replicas > kube_deployment_status_replicas_available",
        "10m",
        "warning",
        "Deployment {{ $labels.namespace }}/{{ $labels.deployment }} runs fewer replicas than it asks for.",
    ),
    (
        "workload",
        "KubemateAutoscalerAtMaximum",
        "kube_horizontalpodautoscaler_status_current_replicas >= kube_horizontalpodautoscaler_spec_max_replicas",
        "15m",
        "info",
        "Autoscaler {{ $labels.namespace }}/{{ $labels.horizontalpodautoscaler }} is at its maximum.",
    ),
    (
        "apiserver",
        "KubemateApiServerErrors",
        '100 * sum(rate(apiserver_request_total{code=~"5.."}[5m])) / sum(rate(apiserver_request_total[5m])) > 3',
        "10m",
        "critical",
        "More than 3 % of API server requests fail.",
    ),
    (
        "certificates",
        "KubemateClientCertificateExpiring",
        "histogram_quantile(0.01, sum by (job, le) (rate(apiserver_client_certificate_expiration_seconds_bucket[5m])))"
        " < 604800",
        "0s",
        "warning",
        "A client certificate used with the API server expires within 7 days.",
    ),
)

GROUP_LABELS = {
    "node": _("Nodes"),
    "pod": _("Pods"),
    "workload": _("Workloads"),
    "apiserver": _("API server"),
    "certificates": _("Certificates"),
}


def builtin_groups() -> list[dict]:
    """The built-in set as Prometheus rule groups (PrometheusRule spec.groups, or a rule file's groups)."""
    groups: dict[str, list[dict]] = {}
    for group, alert, expr, duration, severity, summary in BUILTIN:
        groups.setdefault(group, []).append(
            {
                "alert": alert,
                "expr": expr,
                "for": duration,
                "labels": {"severity": severity, "kubemate_rule": "builtin"},
                "annotations": {"summary": summary},
            }
        )
    return [{"name": f"kubemate.builtin.{group}", "rules": rules} for group, rules in groups.items()]


@dataclass(frozen=True)
class Template:
    """A rule made from a workload name and a threshold."""

    code: str
    label: object
    unit: object
    expr: str  # with {namespace}, {workload} and {threshold}; names already checked as DNS labels
    default: float
    low: float
    high: float
    summary: str  # Prometheus template text, in English like the rule's name (alert text is the cluster's)


TEMPLATES: tuple[Template, ...] = (
    Template(
        "memory_percent",
        _("Memory of a workload above a share of its limit"),
        "%",
        '100 * sum by (namespace, pod) (container_memory_working_set_bytes{{namespace="{namespace}", '
        'pod=~"{workload}-.+", container!=""}}) / sum by (namespace, pod) (kube_pod_container_resource_limits'
        '{{namespace="{namespace}", pod=~"{workload}-.+", resource="memory"}}) > {threshold}',
        80,
        1,
        100,
        "Pod {{{{ $labels.pod }}}} of {workload} uses more than {threshold} % of its memory limit.",
    ),
    Template(
        "cpu_percent",
        _("CPU of a workload above a share of its limit"),
        "%",
        '100 * sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{{namespace="{namespace}", '
        'pod=~"{workload}-.+", container!=""}}[5m])) / sum by (namespace, pod) (kube_pod_container_resource_limits'
        '{{namespace="{namespace}", pod=~"{workload}-.+", resource="cpu"}}) > {threshold}',
        80,
        1,
        100,
        "Pod {{{{ $labels.pod }}}} of {workload} uses more than {threshold} % of its CPU limit.",
    ),
    Template(
        "restarts",
        _("Restarts of a workload's containers in 15 minutes"),
        _("restarts"),
        'sum by (namespace, pod) (increase(kube_pod_container_status_restarts_total{{namespace="{namespace}", '
        'pod=~"{workload}-.+"}}[15m])) > {threshold}',
        3,
        0,
        1000,
        "Pod {{{{ $labels.pod }}}} of {workload} restarted more than {threshold} times in 15 minutes.",
    ),
    Template(
        "replicas_missing",
        _("Replicas of a Deployment missing"),
        _("replicas"),
        'kube_deployment_spec_replicas{{namespace="{namespace}", deployment="{workload}"}} - '
        'kube_deployment_status_replicas_available{{namespace="{namespace}", deployment="{workload}"}} > {threshold}',
        0,
        0,
        1000,
        "Deployment {workload} misses more than {threshold} replicas.",
    ),
    Template(
        "error_rate",
        _("Share of an app's requests answered with a 5xx error"),
        "%",
        '100 * sum(rate(http_requests_total{{namespace="{namespace}", service="{workload}", code=~"5.."}}[5m])) / '
        'sum(rate(http_requests_total{{namespace="{namespace}", service="{workload}"}}[5m])) > {threshold}',
        5,
        0,
        100,
        "More than {threshold} % of the requests to {workload} fail.",
    ),
    Template(
        "latency_p95",
        _("95th percentile latency of an app's requests"),
        _("seconds"),
        "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket"
        '{{namespace="{namespace}", service="{workload}"}}[5m]))) > {threshold}',
        0.5,
        0.001,
        600,
        "The 95th percentile latency of {workload} is above {threshold} s.",
    ),
)
BY_CODE = {t.code: t for t in TEMPLATES}


def number(value: float) -> str:
    """A threshold as PromQL writes it: no exponent, no trailing zeros."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"
