"""What a check reads, gathered once per run: inventory rows streamed kind by kind, per-cluster indexes built once,
Prometheus endpoints, agent reports and database connections fetched once, thresholds with their defaults."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from apps.clusters.models import Cluster, Resource
from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.inspection.checks.base import CannotCheck
from apps.inspection.models import Measurement
from apps.observability import endpoints

CHUNK = 500

# Defaults of the thresholds a template may override (Template.thresholds); checks read them through
# ``ctx.threshold(name)``, so the names here are the complete list.
THRESHOLDS: dict[str, float] = {
    "certificate.warning_days": 30,
    "certificate.critical_days": 7,
    "pvc.full_percent": 85,
    "pvc.pending_minutes": 10,
    "pod.restart_count": 5,
    "pod.pending_minutes": 10,
    "events.warning_count": 10,
    "events.window_hours": 24,
    "controlplane.lease_seconds": 120,
    "image.unused_days": 30,
    "etcd.backup_max_hours": 26,
    "host.cpu_percent": 85,
    "host.load_per_cpu": 2,
    "host.memory_percent": 90,
    "host.swap_percent": 50,
    "host.disk_percent": 85,
    "host.inode_percent": 85,
    "host.iowait_percent": 20,
    "host.network_error_rate": 0,
    "host.clock_offset_ms": 500,
    "host.open_files_percent": 80,
    "host.zombies": 5,
    "host.report_max_age_seconds": 300,
    "host.steal_percent": 10,
    "host.network_drop_percent": 1,
    "app.restarts_24h": 5,
    "app.memory_growth_percent": 50,
    "app.log_growth_ratio": 3,
    "app.jvm_heap_percent": 85,
    "app.memory_growth_min_mib": 64,
    "app.log_min_bytes_per_second": 1024,
    "app.cpu_throttled_percent": 25,
    "app.memory_limit_percent": 90,
    "db.slow_statement_ms": 1000,
    "db.connections_percent": 80,
    "db.replication_lag_seconds": 30,
    "db.table_growth_percent": 50,
    "db.table_size_mb": 10240,
    "db.table_growth_min_mb": 64,
    "db.long_transaction_seconds": 300,
    "db.idle_in_transaction_seconds": 60,
}


@dataclass(frozen=True)
class Row:
    """An inventory row as a check sees it."""

    kind: str
    namespace: str
    name: str
    status: str
    labels: dict
    summary: dict
    object: dict
    created: datetime | None

    @property
    def key(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


class Context:
    """One run's view of the world. ``cluster`` is the target cluster while cluster checks run."""

    def __init__(self, *, thresholds: dict | None = None, now: datetime | None = None, actor=None) -> None:
        self.now = now or timezone.now()
        self.actor = actor
        self._thresholds = {**THRESHOLDS, **{k: float(v) for k, v in (thresholds or {}).items()}}
        self._cache: dict[tuple, Any] = {}
        self.measured: list[tuple[str, str, float]] = []

    # Thresholds ---------------------------------------------------------------------------------------------
    def threshold(self, name: str, default: float | None = None) -> float:
        """The template's value for ``name``, else the default in THRESHOLDS (or ``default``)."""
        if name in self._thresholds:
            return self._thresholds[name]
        if default is None:
            raise KeyError(name)
        return default

    # Measurements kept for growth ---------------------------------------------------------------------------
    def record(self, target: str, key: str, value: float) -> None:
        """Keep ``value`` with this run (stored by the runner with the findings) for later runs' ``history``."""
        self.measured.append((target, key, float(value)))

    def history(self, target: str, key: str, since: datetime | None = None) -> list[tuple[datetime, float]]:
        """Earlier runs' measurements of ``key`` on ``target``, oldest first."""
        query = Measurement.objects.filter(target=target, key=key)
        if since is not None:
            query = query.filter(measured_at__gte=since)
        return list(query.order_by("measured_at").values_list("measured_at", "value")[:1000])

    # Inventory ----------------------------------------------------------------------------------------------
    def rows(self, cluster: Cluster, kind: str, namespace: str | None = None) -> Iterator[Row]:
        """Every inventory row of ``kind`` in ``cluster``, streamed (memory stays flat at 15,000 pods)."""
        query = Resource.objects.filter(cluster=cluster, kind=kind)
        if namespace is not None:
            query = query.filter(namespace=namespace)
        fields = ("kind", "namespace", "name", "status", "labels", "summary", "object", "created")
        for values in query.order_by().values_list(*fields).iterator(chunk_size=CHUNK):
            yield Row(*values)

    def synced(self, cluster: Cluster) -> bool:
        return Resource.objects.filter(cluster=cluster).exists()

    def once(self, key: tuple, build: Callable[[], Any]) -> Any:
        """``build()``'s answer, computed once per run for ``key`` (an index over rows, an agent's report)."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def forget(self, key_prefix: str) -> None:
        for key in [k for k in self._cache if k and k[0] == key_prefix]:
            del self._cache[key]

    # Outside systems ----------------------------------------------------------------------------------------
    def prometheus(self, cluster: Cluster):
        """The cluster's Prometheus endpoint; CannotCheck when it has none."""
        if not cluster.prometheus_url:
            raise CannotCheck(D(N_("No Prometheus is configured for cluster %(cluster)s."), cluster=cluster.name))
        return endpoints.prometheus(cluster)
