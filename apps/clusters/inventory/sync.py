"""The inventory sync: for every cluster and kind, list then watch, into PostgreSQL rows.

One process (``manage.py inventory_sync``, or a worker's thread) runs one thread per cluster it holds the lease of and
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

import contextlib
import logging
import math
import queue
import threading
import time
from collections import Counter

from django.db import close_old_connections, connection
from django.utils import timezone

from apps.clusters import kube
from apps.clusters.inventory.store import BatchingWriter, Delete, Fencing, Heard, Prune, Upsert, apply_ops
from apps.clusters.kinds import BY_KIND, KINDS, Kind
from apps.clusters.models import Cluster, SyncState
from apps.core import leases

logger = logging.getLogger(__name__)
# A page of 500 pods parses into ~190,000 Python objects (14 MB); twenty kinds listing at once left the worker's
# small-object arenas fragmented long after the pages were freed. Pages of 100 kept 20-45 MB less at 15,000 pods
# (bench/README.md, "the footprint").
PAGE_SIZE = 100
METRICS_SECONDS = 30
# An apiserver restart takes seconds, not minutes: retry often, but never more than every 5 s.
RETRY_SECONDS = (0.5, 1, 2, 3, 5)
LEASE_PREFIX = "inventory:"  # inventory:<cluster id>, held by the one process syncing that cluster
MEMBER_PREFIX = "inventory-member:"  # inventory-member:<holder>, one per live sync process


def lease_name(cluster_id: int) -> str:
    return f"{LEASE_PREFIX}{cluster_id}"


def round_seconds() -> float:
    """How often a sync process renews its leases and looks for free ones."""
    return leases.seconds() / 3


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
    """List every kind once and reconcile the rows (tests, and the periodic Celery safety net through
    ``resync_unwatched``)."""
    with kube.client(cluster) as k:
        for kind in kinds:
            ops: list = []
            relist(k, kind, ops.append)
            apply_ops(ops)


def resync_unwatched(cluster: Cluster, kinds=KINDS) -> bool:
    """The periodic safety net: list every kind of a cluster that no sync process watches (its lease is free),
    holding the lease meanwhile so that a sync starting now waits for it, and writing through the fence. A
    watched cluster is left to its holder (which lists it again whenever it takes it). False when skipped."""
    holder = leases.identity("resync")
    tenure = leases.acquire(lease_name(cluster.pk), holder)
    if tenure is None:
        return False
    fencing = Fencing()
    fencing.hold(cluster.pk, tenure)
    try:
        with kube.client(cluster) as k:
            for kind in kinds:
                ops: list = []
                relist(k, kind, ops.append)
                for op in ops:
                    op.token = tenure.token
                if not leases.renew(tenure):
                    return True  # a sync took it over mid-way: it lists everything itself
                apply_ops(ops, fencing)
    finally:
        leases.release(tenure)
    return True


class KindSync(threading.Thread):
    def __init__(
        self, cluster: Cluster, kind: Kind, writer: BatchingWriter, stopping: threading.Event, token: int = 0
    ) -> None:
        super().__init__(name=f"sync-{cluster.name}-{kind.kind}", daemon=True)
        self.cluster, self.kind, self.writer, self.stopping = cluster, kind, writer, stopping
        self.token = token  # the fencing token of the cluster's lease: the writer refuses it once the lease moved
        self.resource_version = ""

    def put(self, op) -> None:
        op.token = self.token
        self.writer.put(op)

    def run(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                with kube.client(self.cluster) as k:
                    if not self.resource_version:
                        self.put(Heard(self.cluster.pk, self.kind.kind, "", SyncState.State.LISTING))
                        done = threading.Event()
                        self.resource_version = relist(k, self.kind, self._emit_with(done))
                        done.wait(120)
                    self.watch(k)
                failures = 0
            except kube.Expired:
                self.resource_version = ""
            except kube.Forbidden as exc:
                self.put(Heard(self.cluster.pk, self.kind.kind, "", SyncState.State.FORBIDDEN, str(exc)))
                self.stopping.wait(60)
            except kube.KubeError as exc:
                self.put(Heard(self.cluster.pk, self.kind.kind, "", SyncState.State.DISCONNECTED, str(exc)))
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
            self.put(op)

        return emit

    def watch(self, k: kube.Client) -> None:
        for event in k.watch(self.kind, self.resource_version):
            if self.stopping.is_set():
                return
            kind, obj = event.get("type"), event.get("object") or {}
            meta = obj.get("metadata") or {}
            self.resource_version = meta.get("resourceVersion") or self.resource_version
            if kind in ("ADDED", "MODIFIED"):
                self.put(Upsert(self.cluster.pk, self.kind.kind, obj))
            elif kind == "DELETED":
                self.put(Delete(self.cluster.pk, self.kind.kind, meta.get("namespace", ""), meta["name"]))
            self.writer.heard(self.cluster.pk, self.kind.kind, self.resource_version, self.token)


class MetricsSync(threading.Thread):
    """Node usage from metrics.k8s.io every 30 s, as NodeMetrics rows (absent when no metrics server runs)."""

    def __init__(self, cluster: Cluster, writer: BatchingWriter, stopping: threading.Event, token: int = 0) -> None:
        super().__init__(name=f"metrics-{cluster.name}", daemon=True)
        self.cluster, self.writer, self.stopping, self.token = cluster, writer, stopping, token

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
            self.writer.put(Upsert(self.cluster.pk, "NodeMetrics", item, token=self.token))
        self.writer.put(Prune(self.cluster.pk, "NodeMetrics", seen, started, "", token=self.token))


def _name_uid(cluster_id: int, name: str) -> str:
    """Metrics objects have no uid; derive a stable one from cluster and node name."""
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kubemate:{cluster_id}:NodeMetrics:{name}"))


class SyncProcess:
    """Runs the syncs of the clusters this process holds the lease of, on any number of processes and replicas.

    Every round (a third of ``KUBEMATE_LEASE_SECONDS``) it renews its membership and its leases, stops the
    syncs whose lease was lost (a renewal or a fenced write told it), and takes free leases: at once while it
    holds fewer than its share (the clusters divided among the live members, rounded up), otherwise only
    leases that stayed free for a whole round, so that members below their share get them first. A member
    above its share while another is below hands one cluster over per round. A taken cluster is listed from
    the start, so a change made while nobody watched is not missed; a stale holder's writes are refused by
    the writer's fence (``store.Fencing``, ``apps/core/leases.py``).
    """

    def __init__(self, kinds=KINDS, metrics: bool = True, holder: str = "") -> None:
        self.kinds, self.metrics = kinds, metrics
        self.holder = holder or leases.identity("sync")
        self.lost: queue.SimpleQueue = queue.SimpleQueue()  # (cluster id, token) from the writer's fence
        self.fencing = Fencing(lost=lambda cluster_id, token: self.lost.put((cluster_id, token)))
        self.writer = BatchingWriter(self.fencing)
        self.running: dict[int, threading.Event] = {}
        self.tenures: dict[int, leases.Tenure] = {}
        self.member: leases.Tenure | None = None

    def start(self) -> None:
        self.writer.start()

    def refresh(self) -> None:
        close_old_connections()
        if self.member is None or not leases.renew(self.member):
            self.member = leases.acquire(MEMBER_PREFIX + self.holder, self.holder)
        while not self.lost.empty():
            cluster_id, token = self.lost.get()
            if cluster_id in self.tenures and self.tenures[cluster_id].token == token:
                self._stop(cluster_id, release=False, why="its writes were refused")
        for cluster_id, tenure in list(self.tenures.items()):
            if not leases.renew(tenure):
                self._stop(cluster_id, release=False, why="another process took its lease")
        clusters = {c.pk: c for c in Cluster.objects.all()}
        for cluster_id in set(self.tenures) - set(clusters):
            self._stop(cluster_id, release=True, why="the cluster was removed")
        members = set(leases.live_holders(MEMBER_PREFIX)) | {self.holder}
        share = math.ceil(len(clusters) / len(members)) if clusters else 0
        holding = Counter(t.holder for t in leases.held(LEASE_PREFIX).values() if t.holder in members)
        if len(self.tenures) > share and any(holding[m] < share for m in members if m != self.holder):
            self._stop(max(self.tenures), release=True, why="handed over to a process with fewer clusters")
        for cluster_id in sorted(set(clusters) - set(self.tenures)):
            below = len(self.tenures) < share
            tenure = leases.acquire(lease_name(cluster_id), self.holder, free_for=0 if below else round_seconds())
            if tenure is not None:
                self._start(clusters[cluster_id], tenure)

    def _start(self, cluster: Cluster, tenure: leases.Tenure) -> None:
        stopping = threading.Event()
        self.running[cluster.pk], self.tenures[cluster.pk] = stopping, tenure
        self.fencing.hold(cluster.pk, tenure)
        for kind in self.kinds:
            KindSync(cluster, kind, self.writer, stopping, tenure.token).start()
        if self.metrics:
            MetricsSync(cluster, self.writer, stopping, tenure.token).start()
        logger.info(
            "inventory sync started",
            extra={"cluster": cluster.name, "kinds": len(self.kinds), "holder": self.holder, "token": tenure.token},
        )

    def _stop(self, cluster_id: int, *, release: bool, why: str) -> None:
        self.fencing.drop(cluster_id)  # what its threads still send is refused from now on
        stopping, tenure = self.running.pop(cluster_id, None), self.tenures.pop(cluster_id, None)
        if stopping is not None:
            stopping.set()
        if release and tenure is not None:
            leases.release(tenure)
        logger.info("inventory sync stopped", extra={"cluster_id": cluster_id, "holder": self.holder, "why": why})

    def run_forever(self, stop: threading.Event, refresh_seconds: float | None = None) -> None:
        self.start()
        try:
            while not stop.is_set():
                self.refresh()
                stop.wait(refresh_seconds or round_seconds())
        finally:
            self.stop()
            connection.close()

    def stop(self) -> None:
        for stopping in self.running.values():
            stopping.set()
        self.writer.stop()
        close_old_connections()
        for tenure in list(self.tenures.values()) + ([self.member] if self.member else []):
            with contextlib.suppress(Exception):  # the database may be what stopped us; the leases expire anyway
                leases.release(tenure)
        self.running.clear()
        self.tenures.clear()


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
