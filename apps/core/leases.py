"""Leases: one holder at a time, across every process and replica, for work that must not run twice (a cluster's
inventory sync, the beat schedule); taken over when the holder dies; and fenced, so a holder that comes back
after losing its lease cannot write.

Why PostgreSQL and not Redis or a Kubernetes Lease object: what the lease guards is writes to PostgreSQL (the
inventory rows). Only a lease in the same database lets the check and the writes be one transaction:
``fence`` reads the lease row ``FOR SHARE`` inside the writer's transaction, so a taker's ``acquire`` (an UPDATE
of that row) waits until the old holder's last batch has committed, and every later batch of the old holder sees
a new token and is refused. A Redis lock or a Kubernetes Lease would be checked, then the write would happen a
moment later: a holder paused between the two (a long GC, a frozen VM) would write after losing the lease.
Kubemate also runs against many clusters; a Lease object in each managed cluster would need write access there
for bookkeeping that belongs to the console.

Every time is PostgreSQL's ``now()``: replicas on hosts whose clocks disagree still agree on who holds what.
A lease lives ``seconds`` (``KUBEMATE_LEASE_SECONDS``, 10) from its last renewal; holders renew every third of
that. A dead holder's lease is therefore free within ``seconds`` of its last renewal, and taken at the next
round of a live process (every ``seconds / 3``).
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import OperationalError, connection, transaction

LOCK_NOT_AVAILABLE = "55P03"


def seconds() -> float:
    return float(settings.KUBEMATE_LEASE_SECONDS)


def identity(role: str) -> str:
    """A holder name that says where it runs (host, pid) and is unique across restarts of the same pid."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"[:200]


@dataclass(frozen=True)
class Tenure:
    name: str
    holder: str
    token: int


def acquire(name: str, holder: str, free_for: float = 0) -> Tenure | None:
    """Take ``name`` if nobody holds it (never held, or released or expired over ``free_for`` seconds ago); None
    if someone does. Taking it raises its token by one. Waits at most 2 s for a writer's fenced transaction on
    the row (then: not now)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '2s'")
            cursor.execute(
                "INSERT INTO core_lease (name, holder, token, acquired_at, renewed_at, expires_at)"
                " VALUES (%s, %s, 1, now(), now(), now() + make_interval(secs => %s))"
                " ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, token = core_lease.token + 1,"
                " acquired_at = now(), renewed_at = now(), expires_at = EXCLUDED.expires_at"
                " WHERE core_lease.expires_at IS NULL"
                " OR core_lease.expires_at < now() - make_interval(secs => %s) RETURNING token",
                [name, holder, seconds(), free_for],
            )
            row = cursor.fetchone()
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", "") == LOCK_NOT_AVAILABLE:  # a fenced write holds the row
            return None
        raise
    return Tenure(name, holder, int(row[0])) if row else None


def renew(tenure: Tenure) -> bool:
    """Extend the tenure; False when it was lost (someone took the lease: the token moved on). An expired lease
    that nobody took is still this holder's: its token did not change, so nothing was written by another."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE core_lease SET renewed_at = now(), expires_at = now() + make_interval(secs => %s)"
            " WHERE name = %s AND holder = %s AND token = %s",
            [seconds(), tenure.name, tenure.holder, tenure.token],
        )
        return cursor.rowcount == 1


def release(tenure: Tenure) -> None:
    """Give the lease up now (a clean stop or a hand-over): the next process takes it at its next round."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE core_lease SET holder = '', expires_at = now() WHERE name = %s AND holder = %s AND token = %s",
            [tenure.name, tenure.holder, tenure.token],
        )


def fence(tenures: list[Tenure]) -> set[str]:
    """Inside the caller's transaction: the names of ``tenures`` still held with their token, their rows locked
    ``FOR SHARE`` until the transaction ends (a taker waits for it). Write only what belongs to those. The
    transaction may sit idle at most 10 s: a holder frozen mid-transaction is cut off by PostgreSQL, its
    locks freed, so it cannot block a takeover."""
    if not tenures:
        return set()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL idle_in_transaction_session_timeout = '10s'")
        cursor.execute(
            "SELECT name, holder, token FROM core_lease WHERE name = ANY(%s) FOR SHARE",
            [[t.name for t in tenures]],
        )
        current = {name: (holder, token) for name, holder, token in cursor.fetchall()}
    return {t.name for t in tenures if current.get(t.name) == (t.holder, t.token)}


def live_holders(prefix: str) -> list[str]:
    """The holders of unexpired leases whose names start with ``prefix`` (e.g. the members of a pool)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT holder FROM core_lease WHERE name LIKE %s AND holder <> '' AND expires_at > now()",
            [prefix.replace("%", r"\%").replace("_", r"\_") + "%"],
        )
        return [row[0] for row in cursor.fetchall()]


def held(prefix: str) -> dict[str, Tenure]:
    """Unexpired leases whose names start with ``prefix``, by name (what a status page shows)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, holder, token FROM core_lease WHERE name LIKE %s AND holder <> '' AND expires_at > now()",
            [prefix.replace("%", r"\%").replace("_", r"\_") + "%"],
        )
        return {name: Tenure(name, holder, int(token)) for name, holder, token in cursor.fetchall()}
