"""Kubemate's own database: its backup (``take``, the body of a database backup Job, called by
``runner.execute`` like ``runner.take_etcd``), what a database holds (``facts``: users, releases, the audit chain's
head, the latest migration of each app), and who may back it up or restore it (``prove``). The restore is in
``restore.py``.

A backup is one moment of the database: a read-only transaction exports its snapshot, the facts recorded with the
backup are read in it, and ``pg_dump`` dumps that same snapshot. The dump is checked with ``pg_restore --list``,
sealed (encrypted, not compressed again: the custom format compresses itself) and uploaded.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db.migrations.loader import MigrationLoader
from psycopg import sql

from apps.backups import access, pgdump, progress, s3, seal
from apps.backups.models import Backup
from apps.core import audit
from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D
from apps.core.jobs import JobRecorder
from apps.core.models import AuditEvent, AuditHead
from apps.releases.models import Release

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
SUFFIX = ".dump.sealed"
MAX_PROBLEMS = 10
NO_HASH = "0" * 64


class DatabaseBackupFailed(Failure):
    """The database could not be dumped, or its dump is not usable; the sentence says why."""


class RestoreRefused(Failure):
    """A restore is refused before the live database is touched; the sentence says why and what to do."""


# What a database holds ----------------------------------------------------------------------------------------------


def _exists(cursor, table: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
    return bool(cursor.fetchone()[0])


def _count(cursor, table: str) -> int | None:
    if not _exists(cursor, table):
        return None
    cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
    return int(cursor.fetchone()[0])


def facts(cursor) -> dict:
    """What a restore brings back, read through a psycopg cursor on any copy of the database (a table a dump from
    an older Kubemate lacks counts as None): users, releases, audit events, the chain's head and the latest
    migration of each app."""
    found: dict = {
        "users": _count(cursor, get_user_model()._meta.db_table),
        "releases": _count(cursor, Release._meta.db_table),
        "audit_events": _count(cursor, AuditEvent._meta.db_table),
        "audit_seq": 0,
        "audit_hash": NO_HASH,
        "migrations": {},
    }
    head = AuditHead._meta.db_table
    if _exists(cursor, head):
        cursor.execute(sql.SQL("SELECT seq, hash FROM {} WHERE id = 1").format(sql.Identifier(head)))
        row = cursor.fetchone()
        if row is not None:
            found["audit_seq"], found["audit_hash"] = int(row[0]), str(row[1])
    if _exists(cursor, "django_migrations"):
        cursor.execute("SELECT app, max(name) FROM django_migrations GROUP BY app ORDER BY app")
        found["migrations"] = {str(app): str(name) for app, name in cursor.fetchall()}
    return found


def code_migrations() -> dict[str, str]:
    """The latest migration of each app in this Kubemate's code."""
    latest: dict[str, str] = {}
    for app, name in MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes():
        latest[app] = max(latest.get(app, ""), name)
    return latest


def schema_differences(migrations: dict[str, str]) -> list[str]:
    """``app: the database's latest -> the code's latest`` for every app where they differ."""
    return [
        f"{app}: {migrations.get(app, '-')} -> {name}"
        for app, name in sorted(code_migrations().items())
        if migrations.get(app) != name
    ]


def _counts(found: dict) -> dict:
    return {k: found.get(k) for k in ("users", "releases", "audit_events", "audit_seq", "audit_hash")}


# Backup -----------------------------------------------------------------------------------------------------------


def take(job: JobRecorder, backup: Backup, folder: Path) -> None:
    """Dump Kubemate's database, check the dump, seal it and upload it to the plan's target."""
    raw = folder / "kubemate.dump"
    newer = pgdump.check_versions("pg_dump")
    job.progress(5, D(N_("Dumping Kubemate's database %(name)s."), name=pgdump.live_settings()["NAME"]))
    if newer:
        job.log(newer)
    started = time.monotonic()
    with pgdump.snapshot() as snap:
        found = facts(snap.cursor)
        snap.cursor.execute("SELECT current_setting('server_version'), now()")
        server_version, dumped_at = snap.cursor.fetchone()
        pgdump.dump(raw, snapshot_id=snap.id)
    seconds = round(time.monotonic() - started, 2)
    listing = pgdump.entries(raw)
    if listing.entries == 0 or listing.table_data == 0:
        raise DatabaseBackupFailed(D(N_("The dump holds no tables; it was not kept.")))
    dump_bytes = raw.stat().st_size
    job.progress(
        35,
        D(
            N_(
                "Dump taken in %(seconds)s s: %(size)s bytes, %(tables)s tables, %(users)s users; the audit log "
                "ends at event %(seq)s."
            ),
            seconds=seconds,
            size=dump_bytes,
            tables=listing.tables,
            users=found["users"],
            seq=found["audit_seq"],
        ),
    )
    sealed = folder / f"kubemate{SUFFIX}"
    seal.seal(raw, sealed, compress=False)
    raw.unlink()
    key = backup.target.key("database", f"{backup.name}{SUFFIX}")
    Backup.objects.filter(pk=backup.pk).update(key=key)  # before the upload: a failure deletes what it left
    backup.key = key
    total = sealed.stat().st_size
    job.progress(45, D(N_("Uploading %(size)s bytes to %(target)s."), size=total, target=backup.target))
    size, sha = s3.upload(
        s3.access_for(backup.target), key, sealed, on_progress=progress.upload_progress(job, 45, 90, total)
    )
    Backup.objects.filter(pk=backup.pk).update(
        size_bytes=size,
        sha256=sha,
        detail={
            "server_version": str(server_version),
            "pg_dump_version": listing.dump_version,
            "database": str(pgdump.live_settings()["NAME"]),
            "dumped_at": dumped_at.isoformat(),
            "dump_seconds": seconds,
            "dump_bytes": dump_bytes,
            "entries": listing.entries,
            "tables": listing.tables,
            "users": found["users"],
            "releases": found["releases"],
            "audit_events": found["audit_events"],
            "audit_seq": found["audit_seq"],
            "audit_hash": found["audit_hash"],
            "migrations": found["migrations"],
        },
    )


# Who may ----------------------------------------------------------------------------------------------------------


def may_manage(user) -> bool:
    return user is not None and user.is_active and (user.is_superuser or access.is_admin(user))


def prove(username: str, password: str, *, purpose: str):
    """The person named, once their password is right and they may manage Kubemate's own backups (a superuser or
    ``backups.admin``); RestoreRefused otherwise. A known person's refusal is audited (never the password)."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None or not user.check_password(password):
        if user is not None:
            _audit_refusal(user, purpose, "password")
        raise RestoreRefused(D(N_("The user name or the password is wrong.")))
    if not may_manage(user):
        _audit_refusal(user, purpose, "capability")
        raise RestoreRefused(
            D(N_("%(user)s may not back up or restore Kubemate's own database (backups.admin)."), user=username)
        )
    return user


def _audit_refusal(user, purpose: str, why: str) -> None:
    audit.record(
        actor=user,
        action="backups.database.refused",
        result=AuditEvent.Result.DENIED,
        kind="Database",
        name=str(pgdump.live_settings()["NAME"]),
        detail={"purpose": purpose, "reason": why},
        reason="",
    )
