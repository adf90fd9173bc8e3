"""Is each cluster's observability stack there? Metrics (Prometheus), alerts (Alertmanager), logs (VictoriaLogs or
Loki) and traces (Jaeger): reachable or not (the door's own sentence when not), its version, and how far behind it
is (ingestion lag: Prometheus's newest scrape, the log store's newest line).

Every system of every cluster is asked at once (a pool of threads, each call bounded by its door's timeout), so a
dead Jaeger costs the page its timeout once, not once per cluster. Credentials are decrypted in the request's
thread and stay in the doors. Rows are shown for the systems the person may read in that cluster (the capability
of each); addresses only to those who manage clusters.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _

from apps.accounts import access
from apps.accounts.capabilities import ALERTS_VIEW, CLUSTERS_MANAGE, LOGS_VIEW, METRICS_VIEW, TRACES_VIEW
from apps.clusters.models import Cluster
from apps.core.deferred import Failure
from apps.observability import alertmanager, endpoints, prometheus

PARALLEL = 8


@dataclass
class Row:
    """One system of one cluster."""

    key: str  # metrics, alerts, logs, traces
    label: object  # what it is for, in the reader's words
    system: str  # Prometheus, Alertmanager, VictoriaLogs, Loki, Jaeger
    address: str  # shown to clusters.manage holders only ("" otherwise)
    configured: bool
    reachable: bool = False
    version: str = ""
    lag_seconds: float | None = None
    problem: str = ""  # the door's sentence when not reachable

    @property
    def state(self) -> str:
        if not self.configured:
            return "unset"
        return "up" if self.reachable else "down"


@dataclass
class ClusterStatus:
    cluster: Cluster
    rows: list[Row] = field(default_factory=list)
    may_manage: bool = False

    @property
    def down(self) -> int:
        return sum(1 for r in self.rows if r.state == "down")


SYSTEMS = (
    ("metrics", METRICS_VIEW, _("Metrics"), "prometheus"),
    ("alerts", ALERTS_VIEW, _("Alerts"), "alertmanager"),
    ("logs", LOGS_VIEW, _("Logs"), "logs"),
    ("traces", TRACES_VIEW, _("Traces"), "jaeger"),
)
CAPABILITIES = tuple(code for _key, code, _label, _endpoint in SYSTEMS)


def clusters(user) -> list[Cluster]:
    """Clusters where ``user`` reads at least one of the systems somewhere."""
    return [
        c
        for c in access.clusters(user).order_by("name")
        if any(access.visible_namespaces(user, code, cluster=c) != frozenset() for code in CAPABILITIES)
    ]


def _metrics(cluster: Cluster, endpoint: endpoints.Endpoint) -> dict:
    version = prometheus.build_version(endpoint)
    return {"version": version, "lag_seconds": prometheus.scrape_lag(endpoint)}


def _alerts(cluster: Cluster, endpoint: endpoints.Endpoint) -> dict:
    return {"version": alertmanager.status(endpoint, timeout=3).version}


def _logs(cluster: Cluster, endpoint: endpoints.Endpoint) -> dict:
    from apps.observability import logstore

    return logstore.probe(cluster)


def _traces(cluster: Cluster, endpoint: endpoints.Endpoint) -> dict:
    from apps.observability import jaeger

    return jaeger.probe(cluster)


ASK: dict[str, Callable[[Cluster, endpoints.Endpoint], dict]] = {
    "metrics": _metrics,
    "alerts": _alerts,
    "logs": _logs,
    "traces": _traces,
}


def _system_name(cluster: Cluster, key: str) -> str:
    if key == "logs":
        return "Loki" if cluster.logs_backend == "loki" else "VictoriaLogs"
    return {"metrics": "Prometheus", "alerts": "Alertmanager", "traces": "Jaeger"}[key]


def read(user, targets: list[Cluster]) -> list[ClusterStatus]:
    """The status of each system of ``targets`` that ``user`` may read, asked in parallel."""
    statuses, calls = [], []
    for cluster in targets:
        status = ClusterStatus(cluster, may_manage=access.may(user, CLUSTERS_MANAGE))
        for key, code, label, name in SYSTEMS:
            if access.visible_namespaces(user, code, cluster=cluster) == frozenset():
                continue
            endpoint = endpoints.of(cluster, name)
            row = Row(
                key=key,
                label=label,
                system=_system_name(cluster, key),
                address=endpoint.shown if status.may_manage else "",
                configured=bool(endpoint.url),
            )
            status.rows.append(row)
            if row.configured:
                calls.append((row, cluster, endpoint))
        statuses.append(status)

    def ask(call):
        row, cluster, endpoint = call
        try:
            found = ASK[row.key](cluster, endpoint) or {}
        except Failure as exc:
            row.problem = str(exc)
            return
        row.reachable = True
        row.version = str(found.get("version") or "")[:64]
        lag = found.get("lag_seconds")
        row.lag_seconds = float(lag) if isinstance(lag, int | float) else None

    if calls:
        with ThreadPoolExecutor(max_workers=min(PARALLEL, len(calls))) as pool:
            list(pool.map(ask, calls))
    return statuses
