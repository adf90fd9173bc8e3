"""The ready-made charts: for each place (cluster, node, namespace, workload, pod, app) the PromQL, unit and title.

The queries use the metric names of the exporters every Kubernetes monitoring stack runs (kube-prometheus,
KubeSphere, Rancher): cAdvisor through the kubelet (``container_*`` with ``namespace``, ``pod`` and
``container`` labels), kube-state-metrics (``kube_*``), node-exporter (``node_*``, tied to a Kubernetes node by
``node_uname_info``'s ``nodename``), the API server's ``apiserver_request_total``, and for an app's golden
signals the usual HTTP metrics (``http_requests_total{code}``, ``http_request_duration_seconds_bucket``) under
``service=<release>`` as the canary checks read them.

A workload's pods are found by name, as Kubernetes names them, so that pods replaced during the range still
count: a Deployment's ``<name>-<template hash>-<suffix>``, a StatefulSet's ``<name>-<ordinal>``, a DaemonSet's
``<name>-<suffix>``.

Placeholders (``$namespace``...) are filled by ``promql`` with names checked against Kubernetes' naming rules
and then escaped for a PromQL string (and for a regular expression where they sit in one), so no name read from
a cluster or a URL can change a query's meaning. A query marked ``cluster_wide`` reads series without a
namespace (nodes, the API server): it is run only for people who see the whole cluster, never rewritten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from string import Template

from django.utils.translation import gettext_lazy as _

from apps.clusters import values
from apps.observability.prometheus import duration

# Units the browser formats (static/kubemate/charts.js): cores, bytes, bytes per second, per second, percent,
# seconds, and plain counts.
CORES, BYTES, BYTES_PER_SECOND, PER_SECOND, PERCENT, SECONDS, COUNT = (
    "cores",
    "bytes",
    "bytes_per_second",
    "per_second",
    "percent",
    "seconds",
    "count",
)
CONTAINERS = 'container!="",container!="POD"'  # cAdvisor also reports the pod's cgroup and its pause container
NETWORK_DEVICES = 'device!~"lo|veth.*|cali.*|flannel.*|cni.*|docker.*|br-.*|tunl.*|vxlan.*"'
ON_NODE = 'on (instance) group_left () node_uname_info{nodename="$node"}'


@dataclass(frozen=True)
class Query:
    """One PromQL of a chart; its series are named by the value of label ``by``, or ``name`` when it gives one."""

    promql: str
    by: str = ""
    name: object = ""
    cluster_wide: bool = False
    reference: bool = False  # a line to compare with (requested, limit, allocatable): drawn dashed


@dataclass(frozen=True)
class Chart:
    key: str
    title: object
    unit: str
    queries: tuple[Query, ...]
    stack: bool = False  # parts of one whole (pods by phase): drawn as stacked areas

    @property
    def cluster_wide(self) -> bool:
        return all(q.cluster_wide for q in self.queries)


def _cpu(selector: str, by: str) -> str:
    return f"sum by ({by}) (rate(container_cpu_usage_seconds_total{{{selector},{CONTAINERS}}}[$window]))"


def _memory(selector: str, by: str) -> str:
    return f"sum by ({by}) (container_memory_working_set_bytes{{{selector},{CONTAINERS}}})"


def _network(selector: str, direction: str) -> str:
    return f"sum(rate(container_network_{direction}_bytes_total{{{selector}}}[$window]))"


RECEIVED = Query(_network('namespace="$namespace",pod=~"$pods"', "receive"), name=_("received"))
SENT = Query(_network('namespace="$namespace",pod=~"$pods"', "transmit"), name=_("sent"))

CLUSTER = (
    Chart(
        "cpu",
        _("CPU"),
        CORES,
        (
            Query(f"sum(rate(container_cpu_usage_seconds_total{{{CONTAINERS}}}[$window]))", name=_("used")),
            Query('sum(kube_pod_container_resource_requests{resource="cpu"})', name=_("requested"), reference=True),
            Query(
                'sum(kube_node_status_allocatable{resource="cpu"})',
                name=_("allocatable"),
                reference=True,
                cluster_wide=True,
            ),
        ),
    ),
    Chart(
        "memory",
        _("Memory"),
        BYTES,
        (
            Query(f"sum(container_memory_working_set_bytes{{{CONTAINERS}}})", name=_("used")),
            Query('sum(kube_pod_container_resource_requests{resource="memory"})', name=_("requested"), reference=True),
            Query(
                'sum(kube_node_status_allocatable{resource="memory"})',
                name=_("allocatable"),
                reference=True,
                cluster_wide=True,
            ),
        ),
    ),
    Chart(
        "pods", _("Pods by phase"), COUNT, (Query("sum by (phase) (kube_pod_status_phase)", by="phase"),), stack=True
    ),
    Chart(
        "api",
        _("API server requests"),
        PER_SECOND,
        (Query("sum by (code) (rate(apiserver_request_total[$window]))", by="code", cluster_wide=True),),
    ),
    Chart(
        "cpu_by_namespace", _("CPU by namespace"), CORES, (Query(_cpu('namespace!=""', "namespace"), by="namespace"),)
    ),
    Chart(
        "memory_by_namespace",
        _("Memory by namespace"),
        BYTES,
        (Query(_memory('namespace!=""', "namespace"), by="namespace"),),
    ),
)

NODE = (
    Chart(
        "cpu",
        _("CPU utilisation"),
        PERCENT,
        (
            Query(
                f'100 * (1 - avg(rate(node_cpu_seconds_total{{mode="idle"}}[$window]) * {ON_NODE}))',
                name=_("used"),
                cluster_wide=True,
            ),
        ),
    ),
    Chart(
        "memory",
        _("Memory utilisation"),
        PERCENT,
        (
            Query(
                f"100 * (1 - sum(node_memory_MemAvailable_bytes * {ON_NODE})"
                f" / sum(node_memory_MemTotal_bytes * {ON_NODE}))",
                name=_("used"),
                cluster_wide=True,
            ),
        ),
    ),
    Chart(
        "pods",
        _("Pods on the node"),
        COUNT,
        (Query('count(kube_pod_info{node="$node"})', name=_("pods"), cluster_wide=True),),
    ),
    Chart(
        "network",
        _("Network"),
        BYTES_PER_SECOND,
        (
            Query(
                f"sum(rate(node_network_receive_bytes_total{{{NETWORK_DEVICES}}}[$window]) * {ON_NODE})",
                name=_("received"),
                cluster_wide=True,
            ),
            Query(
                f"sum(rate(node_network_transmit_bytes_total{{{NETWORK_DEVICES}}}[$window]) * {ON_NODE})",
                name=_("sent"),
                cluster_wide=True,
            ),
        ),
    ),
    Chart(
        "disk",
        _("Root file system used"),
        PERCENT,
        (
            Query(
                '100 * (1 - sum(node_filesystem_avail_bytes{mountpoint="/",fstype!="rootfs"} * '
                + ON_NODE
                + ') / sum(node_filesystem_size_bytes{mountpoint="/",fstype!="rootfs"} * '
                + ON_NODE
                + "))",
                name=_("used"),
                cluster_wide=True,
            ),
        ),
    ),
)

NAMESPACE = (
    Chart("cpu", _("CPU by pod"), CORES, (Query(_cpu('namespace="$namespace"', "pod"), by="pod"),)),
    Chart("memory", _("Memory by pod"), BYTES, (Query(_memory('namespace="$namespace"', "pod"), by="pod"),)),
    Chart(
        "pods",
        _("Pods by phase"),
        COUNT,
        (Query('sum by (phase) (kube_pod_status_phase{namespace="$namespace"})', by="phase"),),
        stack=True,
    ),
    Chart(
        "network",
        _("Network"),
        BYTES_PER_SECOND,
        (
            Query(_network('namespace="$namespace"', "receive"), name=_("received")),
            Query(_network('namespace="$namespace"', "transmit"), name=_("sent")),
        ),
    ),
)

_WORKLOAD_PODS = 'namespace="$namespace",pod=~"$pods"'
_RESTARTS = Chart(
    "restarts",
    _("Container restarts (total)"),
    COUNT,
    (Query(f"sum by (pod) (kube_pod_container_status_restarts_total{{{_WORKLOAD_PODS}}})", by="pod"),),
)


def _workload(replicas: Chart) -> tuple[Chart, ...]:
    return (
        Chart("cpu", _("CPU by pod"), CORES, (Query(_cpu(_WORKLOAD_PODS, "pod"), by="pod"),)),
        Chart("memory", _("Memory by pod"), BYTES, (Query(_memory(_WORKLOAD_PODS, "pod"), by="pod"),)),
        _RESTARTS,
        replicas,
    )


def _replicas(*queries: tuple[str, object]) -> Chart:
    return Chart("replicas", _("Replicas"), COUNT, tuple(Query(q, name=n) for q, n in queries))


_THIS = 'namespace="$namespace",{kind}="$name"'
DEPLOYMENT = _workload(
    _replicas(
        (f"max(kube_deployment_spec_replicas{{{_THIS.format(kind='deployment')}}})", _("desired")),
        (f"max(kube_deployment_status_replicas_available{{{_THIS.format(kind='deployment')}}})", _("available")),
        (f"max(kube_deployment_status_replicas_updated{{{_THIS.format(kind='deployment')}}})", _("up to date")),
    )
)
STATEFULSET = _workload(
    _replicas(
        (f"max(kube_statefulset_replicas{{{_THIS.format(kind='statefulset')}}})", _("desired")),
        (f"max(kube_statefulset_status_replicas_ready{{{_THIS.format(kind='statefulset')}}})", _("ready")),
    )
)
DAEMONSET = _workload(
    _replicas(
        (f"max(kube_daemonset_status_desired_number_scheduled{{{_THIS.format(kind='daemonset')}}})", _("desired")),
        (f"max(kube_daemonset_status_number_ready{{{_THIS.format(kind='daemonset')}}})", _("ready")),
    )
)

_POD = 'namespace="$namespace",pod="$pod"'
POD = (
    Chart(
        "cpu",
        _("CPU"),
        CORES,
        (
            Query(_cpu(_POD, "container"), by="container"),
            Query(
                f'sum(kube_pod_container_resource_requests{{{_POD},resource="cpu"}})',
                name=_("requested"),
                reference=True,
            ),
            Query(f'sum(kube_pod_container_resource_limits{{{_POD},resource="cpu"}})', name=_("limit"), reference=True),
        ),
    ),
    Chart(
        "memory",
        _("Memory"),
        BYTES,
        (
            Query(_memory(_POD, "container"), by="container"),
            Query(
                f'sum(kube_pod_container_resource_requests{{{_POD},resource="memory"}})',
                name=_("requested"),
                reference=True,
            ),
            Query(
                f'sum(kube_pod_container_resource_limits{{{_POD},resource="memory"}})', name=_("limit"), reference=True
            ),
        ),
    ),
    Chart(
        "restarts",
        _("Container restarts (total)"),
        COUNT,
        (Query(f"sum by (container) (kube_pod_container_status_restarts_total{{{_POD}}})", by="container"),),
    ),
    Chart(
        "network",
        _("Network"),
        BYTES_PER_SECOND,
        (
            Query(_network(_POD, "receive"), name=_("received")),
            Query(_network(_POD, "transmit"), name=_("sent")),
        ),
    ),
)

_APP = 'namespace="$namespace",service=~"$services"'
APP = (
    Chart(
        "requests",
        _("Request rate"),
        PER_SECOND,
        (Query(f"sum by (service) (rate(http_requests_total{{{_APP}}}[$window]))", by="service"),),
    ),
    Chart(
        "errors",
        _("Error rate (5xx)"),
        PERCENT,
        (
            Query(
                f'100 * sum by (service) (rate(http_requests_total{{{_APP},code=~"5.."}}[$window]))'
                f" / sum by (service) (rate(http_requests_total{{{_APP}}}[$window]))",
                by="service",
            ),
        ),
    ),
    Chart(
        "latency",
        _("Latency"),
        SECONDS,
        tuple(
            Query(
                f"histogram_quantile({q}, sum by (le) (rate(http_request_duration_seconds_bucket{{{_APP}}}[$window])))",
                name=label,  # percentiles read the same in every language
            )
            for q, label in (("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99"))
        ),
    ),
)

# Places and their charts; a workload's place is its kind.
CHARTS: dict[str, tuple[Chart, ...]] = {
    "cluster": CLUSTER,
    "node": NODE,
    "namespace": NAMESPACE,
    "deployment": DEPLOYMENT,
    "statefulset": STATEFULSET,
    "daemonset": DAEMONSET,
    "pod": POD,
    "app": APP,
}
WORKLOAD_KINDS = {"Deployment": "deployment", "StatefulSet": "statefulset", "DaemonSet": "daemonset"}

# What follows a workload's name in its pods' names, and an app's name in its Services' (a release's canary
# Service is ``<name>-canary``, as releases/render.py names it).
# The hash and suffix letters are Kubernetes' own alphabet (apimachinery's rand.SafeEncodeString: no vowels, no
# 0, 1 or 3), so a StatefulSet "web-db" (pods web-db-0...) never counts as a Deployment "web".
_SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
NAME_PATTERN = {
    "deployment": f"-{_SAFE}{{1,10}}-{_SAFE}{{5}}",
    "statefulset": "-[0-9]+",
    "daemonset": f"-{_SAFE}{{5}}",
    "app": "(-canary)?",
}
_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


def quoted(value: str) -> str:
    """``value`` as the inside of a double-quoted PromQL string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def literal(value: str) -> str:
    """``value`` matched literally inside a regular expression (RE2), as the inside of a PromQL string."""
    return quoted(_RE2_SPECIAL.sub(r"\\\1", value))


def window(step: int, scrape: int) -> str:
    """The range of ``rate()``: Grafana's ``$__rate_interval``, at least four scrapes and a step and a scrape."""
    return duration(max(step + scrape, 4 * scrape))


class BadName(ValueError):
    """A name no Kubernetes object can have: no query is built from it."""


def _checked(kind: str, value: str) -> str:
    valid = values.is_dns_label(value) if kind == "namespace" else values.is_dns_subdomain(value)
    if not valid:
        raise BadName(value)
    return value


def fill(promql: str, *, rate_window: str, namespace: str = "", name: str = "", place: str = "") -> str:
    """``promql`` with its placeholders filled for the object ``namespace``/``name`` of ``place``."""
    names = {"window": rate_window}
    if namespace:
        names["namespace"] = quoted(_checked("namespace", namespace))
    if name:
        checked = _checked("name", name)
        names.update(node=quoted(checked), pod=quoted(checked), name=quoted(checked))
        if place in NAME_PATTERN:
            names["pods"] = names["services"] = literal(checked) + NAME_PATTERN[place]
    return Template(promql).substitute(names)
