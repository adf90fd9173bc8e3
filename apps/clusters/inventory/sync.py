"""The inventory sync: for every cluster and kind, list then watch, into PostgreSQL rows.

One process (``manage.py inventory_sync``) runs one thread per cluster and
kind plus one writer thread. Each kind thread:

1. lists the kind page by page (limit/continue) and upserts each page, then
   prunes rows the list did not return (objects deleted while no watch ran);
2. watches from the list's resourceVersion with bookmarks, turning events into
   upserts and deletes;
3. on 410 Gone lists again; on a dropped connection or an apiserver restart
   resumes the watch from the last resourceVersion it saw, and lists again if
   that has expired meanwhile. While the apiserver is down the rows stay and
   SyncState tells the pages how old they are.

Threads rather than processes: they share one Python heap (the sync's memory
target is 300 MB at 15,000 pods) and mostly wait on sockets.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import close_old_connections, connection
from django.utils import timezone

from apps.clusters import kube
from apps.clusters.inventory.store import BatchingWriter, Delete, Heard, Prune, Upsert, apply_ops
from apps.clusters.kinds import BY_KIND, KINDS, Kind
from apps.clusters.models import Cluster, SyncState

logger = logging.getLogger(__name__)
PAGE_SIZE = 500
METRICS_SECONDS = 30
# An apiserver restart takes seconds, not minutes: retry often, but never more than every 5 s.
RETRY_SECONDS = (0.5, 1, 2, 3, 5)


def relist(k: kube.Client, kind: Kind, emit) -> str:
    """List ``kind`` page by page through ``emit`` and end with a Prune; returns the list's resourceVersion."""
    cluster = k.cluster
    started = timezone.now()
    seen: list[str] = []
    token, resource_version = "", ""
    while True:
        query = [("limit", str(PAGE_SIZE))] + ([("continue", token)] if token else [])
        page = k.list_page(kind, query=query)
        for item in page.get("items") or []:
            seen.append(item["metadata"]["uid"])
            emit(Upsert(cluster.pk, kind.kind, item))
        meta = page.get("metadata") or {}
        token = meta.get("continue", "")
        resource_version = resource_version or meta.get("resourceVersion", "")
        if not token:
            break
    # The version of the first page is the snapshot all pages belong to.
    emit(Prune(cluster.pk, kind.kind, seen, started, resource_version))
    return resource_version


def full_resync(cluster: Cluster, kinds=KINDS) -> None:
    """List every kind once and reconcile the rows (the periodic Celery safety net)."""
    with kube.client(cluster) as k:
        for kind in kinds:
            ops: list = []
            relist(k, kind, ops.append)
            apply_ops(ops)


class KindSync(threading.Thread):
    def __init__(self, cluster: Cluster, kind: Kind, writer: BatchingWriter, stopping: threading.Event) -> None:
        super().__init__(name=f"sync-{cluster.name}-{kind.kind}", daemon=True)
        self.cluster, self.kind, self.writer, self.stopping = cluster, kind, writer, stopping
        self.resource_version = ""

    def run(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                with kube.client(self.cluster) as k:
                    if not self.resource_version:
                        self.writer.put(Heard(self.cluster.pk, self.kind.kind, "", SyncState.State.LISTING))
                        done = threading.Event()
                        self.resource_version = relist(k, self.kind, self._emit_with(done))
                        done.wait(120)
                    self.watch(k)
                failures = 0
            except kube.Expired:
                self.resource_version = ""
            except kube.Forbidden as exc:
                self.writer.put(Heard(self.cluster.pk, self.kind.kind, "", SyncState.State.FORBIDDEN, str(exc)))
                self.stopping.wait(60)
            except kube.KubeError as exc:
                self.writer.put(Heard(self.cluster.pk, self.kind.kind, "", SyncState.State.DISCONNECTED, str(exc)))
                self.stopping.wait(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
                failures += 1
            except Exception:
                logger.exception("inventory sync failed", extra={"cluster": self.cluster.name, "kind": self.kind.kind})
                self.resource_version = ""
                self.stopping.wait(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
                failures += 1

    def _emit_with(self, done: threading.Event):
        def emit(op):
            if isinstance(op, Prune):
                op.done = done
            self.writer.put(op)

        return emit

    def watch(self, k: kube.Client) -> None:
        for event in k.watch(self.kind, self.resource_version):
            if self.stopping.is_set():
                return
            kind, obj = event.get("type"), event.get("object") or {}
            meta = obj.get("metadata") or {}
            self.resource_version = meta.get("resourceVersion") or self.resource_version
            if kind in ("ADDED", "MODIFIED"):
                self.writer.put(Upsert(self.cluster.pk, self.kind.kind, obj))
            elif kind == "DELETED":
                self.writer.put(Delete(self.cluster.pk, self.kind.kind, meta.get("namespace", ""), meta["name"]))
            self.writer.heard(self.cluster.pk, self.kind.kind, self.resource_version)


class MetricsSync(threading.Thread):
    """Node usage from metrics.k8s.io every 30 s, as NodeMetrics rows (absent when no metrics server runs)."""

    def __init__(self, cluster: Cluster, writer: BatchingWriter, stopping: threading.Event) -> None:
        super().__init__(name=f"metrics-{cluster.name}", daemon=True)
        self.cluster, self.writer, self.stopping = cluster, writer, stopping

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll()
            except kube.KubeError as exc:
                logger.info("node metrics unavailable", extra={"cluster": self.cluster.name, "reason": str(exc)})
            except Exception:
                logger.exception("node metrics failed", extra={"cluster": self.cluster.name})
            self.stopping.wait(METRICS_SECONDS)

    def poll(self) -> None:
        started = timezone.now()
        with kube.client(self.cluster) as k:
            items = k.list("NodeMetrics")
        seen = []
        for item in items:
            seen.append(item["metadata"].get("uid") or _name_uid(self.cluster.pk, item["metadata"]["name"]))
            item["metadata"]["uid"] = seen[-1]
            self.writer.put(Upsert(self.cluster.pk, "NodeMetrics", item))
        self.writer.put(Prune(self.cluster.pk, "NodeMetrics", seen, started, ""))


def _name_uid(cluster_id: int, name: str) -> str:
    """Metrics objects have no uid; derive a stable one from cluster and node name."""
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kubemate:{cluster_id}:NodeMetrics:{name}"))


class SyncProcess:
    """Runs the syncs of every registered cluster; picks up added and removed clusters every 30 s."""

    def __init__(self, kinds=KINDS, metrics: bool = True) -> None:
        self.kinds, self.metrics = kinds, metrics
        self.writer = BatchingWriter()
        self.running: dict[int, threading.Event] = {}

    def start(self) -> None:
        self.writer.start()

    def refresh(self) -> None:
        close_old_connections()
        clusters = {c.pk: c for c in Cluster.objects.all()}
        for cluster_id in set(self.running) - set(clusters):
            self.running.pop(cluster_id).set()
        for cluster_id, cluster in clusters.items():
            if cluster_id in self.running:
                continue
            stopping = threading.Event()
            self.running[cluster_id] = stopping
            for kind in self.kinds:
                KindSync(cluster, kind, self.writer, stopping).start()
            if self.metrics:
                MetricsSync(cluster, self.writer, stopping).start()
            logger.info("inventory sync started", extra={"cluster": cluster.name, "kinds": len(self.kinds)})

    def run_forever(self, stop: threading.Event, refresh_seconds: float = 30) -> None:
        self.start()
        try:
            while not stop.is_set():
                self.refresh()
                stop.wait(refresh_seconds)
        finally:
            self.stop()
            connection.close()

    def stop(self) -> None:
        for stopping in self.running.values():
            stopping.set()
        self.writer.stop()


def kinds_named(names: list[str] | None):
    return KINDS if not names else tuple(BY_KIND[name] for name in names)


def wait_until_listed(cluster: Cluster, kinds=KINDS, timeout: float = 120) -> bool:
    """Block until every kind of ``cluster`` finished its first list (used by tests and the benchmark)."""
    deadline = time.monotonic() + timeout
    names = [k.kind for k in kinds]
    while time.monotonic() < deadline:
        done = SyncState.objects.filter(cluster=cluster, kind__in=names, listed_at__isnull=False).count()
        if done == len(names):
            return True
        time.sleep(0.2)
    return False
