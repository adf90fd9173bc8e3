"""Writing inventory rows: bulk upserts, deletes and prunes in few statements.

``apply_ops`` is synchronous (used by the Celery full resync and by tests);
``BatchingWriter`` wraps it in one thread per sync process that gathers the
events of every watch for up to ``FLUSH_SECONDS`` and writes them together,
so 15,000 pods arrive in seconds and a single change reaches its row in well
under a second.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from apps.clusters.inventory.summaries import row_fields
from apps.clusters.kinds import BY_KIND
from apps.clusters.models import Resource, SyncState
from apps.core import leases, memory

logger = logging.getLogger(__name__)
FLUSH_SECONDS = 0.05
MAX_BATCH = 1000
TRIM_SECONDS = 30  # apps/core/memory.py: at most this often while idle, every 5 s after lists
UPDATE_FIELDS = [
    "api_group",
    "uid",
    "resource_version",
    "labels",
    "owner_kind",
    "owner_name",
    "owner_uid",
    "status",
    "summary",
    "object",
    "created",
    "synced_at",
]


class Upsert:
    """Insert or update the row of ``obj``. The row is made here, in the thread that heard the object, and kept as
    JSON text: a queued pod costs its few kilobytes of JSON instead of the tens of kilobytes of its parsed dict,
    which the writer's queue of 2,000 operations used to hold at the peak of a list (bench/README.md)."""

    __slots__ = ("cluster_id", "key", "kind", "row", "token")

    def __init__(self, cluster_id: int, kind: str, obj: dict, token: int = 0) -> None:
        meta = obj.get("metadata") or {}
        self.cluster_id, self.kind = cluster_id, kind
        self.key = (cluster_id, kind, meta.get("namespace", ""), meta.get("name"))
        self.row = json.dumps(
            {
                "cluster_id": cluster_id,
                "api_group": BY_KIND[kind].group if kind in BY_KIND else "",
                **row_fields(kind, obj),
            },
            default=str,
        )
        self.token = token  # the fencing token of the lease the sync held when it heard this (0: unfenced)

    def __repr__(self) -> str:
        return f"Upsert{self.key!r}"


@dataclass
class Delete:
    cluster_id: int
    kind: str
    namespace: str
    name: str
    token: int = 0


@dataclass
class Prune:
    """Remove rows of a kind that a full list did not return and that no event touched since the list began."""

    cluster_id: int
    kind: str
    seen_uids: list[str]
    started_at: datetime
    resource_version: str
    done: threading.Event | None = field(default=None, repr=False)
    token: int = 0


@dataclass
class Heard:
    """The watch advanced (a bookmark or any event) to ``resource_version``."""

    cluster_id: int
    kind: str
    resource_version: str
    state: str = SyncState.State.WATCHING
    message: str = ""
    token: int = 0


def _key(op) -> tuple:
    if isinstance(op, Upsert):
        return op.key
    return (op.cluster_id, op.kind, op.namespace, op.name)


# Upserts go to PostgreSQL as one JSON document expanded by jsonb_to_recordset. bulk_create() sends each column
# as an array (Django 5.2's UNNEST insert), and psycopg's client-side binding quotes every JSON value of those
# arrays with a Python regex: at 15,000 pods that quoting was most of the writer's time (bench/README.md).
_COLUMNS = (
    ("cluster_id", "bigint"),
    ("kind", "text"),
    ("api_group", "text"),
    ("namespace", "text"),
    ("name", "text"),
    ("uid", "uuid"),
    ("resource_version", "text"),
    ("labels", "jsonb"),
    ("owner_kind", "text"),
    ("owner_name", "text"),
    ("owner_uid", "uuid"),
    ("status", "text"),
    ("summary", "jsonb"),
    ("object", "jsonb"),
    ("created", "timestamptz"),
)
UPSERT_SQL = (  # built from the constant column lists above only
    f"INSERT INTO clusters_resource ({', '.join(c for c, _t in _COLUMNS)}, synced_at)"  # noqa: S608
    f" SELECT {', '.join('r.' + c for c, _t in _COLUMNS)}, %s FROM jsonb_to_recordset(%s::jsonb)"
    f" AS r({', '.join(f'{c} {t}' for c, t in _COLUMNS)})"
    " ON CONFLICT (cluster_id, kind, namespace, name) DO UPDATE SET "
    + ", ".join(f"{f} = EXCLUDED.{f}" for f in UPDATE_FIELDS)
)


def _flush_rows(pending: dict) -> None:
    deletes = [k for k, op in pending.items() if isinstance(op, Delete)]
    upserts = [op for op in pending.values() if isinstance(op, Upsert)]
    for cluster_id, kind, namespace, name in deletes:
        Resource.objects.filter(cluster_id=cluster_id, kind=kind, namespace=namespace, name=name).delete()
    if upserts:
        with connection.cursor() as cursor:
            cursor.execute(UPSERT_SQL, [timezone.now(), "[" + ",".join(op.row for op in upserts) + "]"])
    pending.clear()


def _prune(op: Prune) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM clusters_resource WHERE cluster_id = %s AND kind = %s AND synced_at < %s"
            " AND NOT (uid = ANY(%s::uuid[]))",
            [op.cluster_id, op.kind, op.started_at, op.seen_uids],
        )
        removed = cursor.rowcount
    count = Resource.objects.filter(cluster_id=op.cluster_id, kind=op.kind).count()
    SyncState.objects.update_or_create(
        cluster_id=op.cluster_id,
        kind=op.kind,
        defaults={
            "state": SyncState.State.WATCHING,
            "resource_version": op.resource_version,
            "listed_at": timezone.now(),
            "heard_at": timezone.now(),
            "object_count": count,
            "message": "",
        },
    )
    return removed


def _heard(op: Heard) -> None:
    SyncState.objects.update_or_create(
        cluster_id=op.cluster_id,
        kind=op.kind,
        defaults={
            "state": op.state,
            "resource_version": op.resource_version,
            "heard_at": timezone.now(),
            "message": op.message[:500],
        }
        if op.state == SyncState.State.WATCHING
        else {"state": op.state, "message": op.message[:500]},
    )


class Fencing:
    """The leases a sync process holds, one per cluster (``apps/core/leases.py``): the writer writes a cluster's
    operations only while the lease is still this process's with the token they were heard under, checked in
    the same transaction as the writes. A cluster whose lease was taken is reported through ``lost``."""

    def __init__(self, lost=None) -> None:
        self.tenures: dict[int, leases.Tenure] = {}
        self.lost = lost or (lambda cluster_id, token: None)
        self.refused = 0  # operations refused since the start (a stale holder's)

    def hold(self, cluster_id: int, tenure: leases.Tenure) -> None:
        self.tenures[cluster_id] = tenure

    def drop(self, cluster_id: int) -> None:
        self.tenures.pop(cluster_id, None)

    def admit(self, ops: list) -> list:
        """Inside the writer's transaction: the operations that may be written; the rest are counted and their
        clusters reported lost."""
        tenures = {cid: t for cid in {op.cluster_id for op in ops} if (t := self.tenures.get(cid))}
        still = leases.fence(list(tenures.values()))
        valid = {cid: t.token for cid, t in tenures.items() if t.name in still}
        admitted = [op for op in ops if valid.get(op.cluster_id) == op.token]
        refused = len(ops) - len(admitted)
        if refused:
            self.refused += refused
            for cluster_id, tenure in tenures.items():
                if cluster_id not in valid:
                    logger.warning("inventory writes refused: the lease was lost", extra={"cluster_id": cluster_id})
                    self.lost(cluster_id, tenure.token)
        return admitted


def apply_ops(ops, fencing: Fencing | None = None) -> None:
    """Apply operations in order; consecutive upserts and deletes collapse to the last one per object. With
    ``fencing``, only the operations of clusters whose lease this process still holds are written."""
    pending: dict = {}
    with transaction.atomic():
        if fencing is not None:
            ops = fencing.admit(list(ops))
        for op in ops:
            if isinstance(op, Upsert | Delete):
                pending[_key(op)] = op
                continue
            _flush_rows(pending)
            if isinstance(op, Prune):
                _prune(op)
            elif isinstance(op, Heard):
                _heard(op)
        _flush_rows(pending)


class BatchingWriter(threading.Thread):
    """One writer per sync process: watches put operations in, this thread writes them in batches."""

    def __init__(self, fencing: Fencing | None = None) -> None:
        super().__init__(name="inventory-writer", daemon=True)
        self.fencing = fencing
        self.queue: queue.Queue = queue.Queue(maxsize=2000)
        self.stopping = threading.Event()
        self.last_heard: dict[tuple[int, str], float] = {}

    def put(self, op) -> None:
        self.queue.put(op)

    def heard(self, cluster_id: int, kind: str, resource_version: str, token: int = 0) -> None:
        """Record watch progress at most every few seconds per kind: it only feeds the "last synced" age."""
        now = time.monotonic()
        if now - self.last_heard.get((cluster_id, kind), 0) >= 2:
            self.last_heard[(cluster_id, kind)] = now
            self.queue.put(Heard(cluster_id, kind, resource_version, token=token))

    def run(self) -> None:
        while not (self.stopping.is_set() and self.queue.empty()):
            try:
                first = self.queue.get(timeout=0.5)
            except queue.Empty:
                memory.trim(TRIM_SECONDS)  # quiet: hand what the last burst freed back to the system
                continue
            batch = [first]
            deadline = time.monotonic() + FLUSH_SECONDS
            while len(batch) < MAX_BATCH:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self.queue.get(timeout=remaining))
                except queue.Empty:
                    break
            self._write(batch)
        connection.close()

    def _write(self, batch) -> None:
        close_old_connections()
        try:
            apply_ops(batch, self.fencing)
        except Exception:
            logger.exception("inventory write failed; the next relist repairs it", extra={"ops": len(batch)})
        listed = False
        for op in batch:
            if isinstance(op, Prune):
                listed = True
                if op.done is not None:
                    op.done.set()
        if listed:  # a whole list went through: its pages are garbage now
            memory.trim(TRIM_SECONDS / 6)

    def stop(self, timeout: float = 10) -> None:
        self.stopping.set()
        self.join(timeout)
