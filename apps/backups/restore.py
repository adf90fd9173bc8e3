"""Kubemate's own database restored from one of its backups (``restore``, run by ``manage.py restore_database``;
``describe`` words its report). The backup half, and what a database holds, are in ``database.py``.

A restore never trusts a backup blindly: the sealed object is downloaded (its SHA-256 checked), opened (a damaged
or altered file does not open), listed, and restored into a scratch database first. There the schema must be this
Kubemate's (the same latest migration of each app) and the audit chain must verify. A dry run reports what the
restore would bring back against the live database and stops; a real run then restores the live database in one
transaction (a failure leaves it as it was), verifies its chain, and appends one audit event,
``backups.database.restored``, to the restored chain, with a ``Restore`` row. The scratch database is always dropped.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.utils import load_backend
from django.utils import timezone

from apps.backups import pgdump, s3, seal
from apps.backups.database import (
    SUFFIX,
    RestoreRefused,
    _counts,
    facts,
    may_manage,
    schema_differences,
)
from apps.backups.models import Backup, Kind, Restore, Target
from apps.core import audit
from apps.core.deferred import N_, Failure, fit, render, sentence_of
from apps.core.deferred import text as D
from apps.core.models import AuditEvent, Job

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
MAX_PROBLEMS = 10
NO_HASH = "0" * 64


# Restore ----------------------------------------------------------------------------------------------------------


def _workdir() -> Path:
    root = Path(settings.KUBEMATE_BACKUP_WORKDIR)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Path(tempfile.mkdtemp(prefix="restore-", dir=root))


def _speaker(stdout: TextIO | None) -> Callable[[str], None]:
    def say(sentence: str) -> None:
        if stdout is not None:
            stdout.write(render(sentence) + "\n")

    return say


@contextmanager
def _django_alias(db: dict) -> Iterator[str]:
    """A Django connection alias to another database (the scratch copy), for the ORM's ``using``; closed after."""
    alias = f"kubemate_restore_check_{timezone.now():%H%M%S%f}"
    # A connection of this thread only, not a configured database: nothing else (routers, checks, the test
    # runner's list of databases) sees it.
    wrapper = load_backend(db["ENGINE"]).DatabaseWrapper({**db}, alias)
    connections[alias] = wrapper
    try:
        yield alias
    finally:
        wrapper.close()
        del connections[alias]


def _chain(alias: str) -> tuple[int, list[str]]:
    """(number of problems, the first few) of the audit chain on the database behind ``alias``."""
    count, first = 0, []
    for problem in audit.verify(using=alias):
        count += 1
        if len(first) < MAX_PROBLEMS:
            first.append(problem.sentence)
    return count, first


def _live_facts() -> dict:
    with pgdump.connect() as conn, conn.cursor() as cursor:
        return facts(cursor)


def _check_in_scratch(dump: Path, lock_timeout: float, clock: dict) -> dict:
    """Restore ``dump`` into a scratch database, read what it holds and verify its audit chain; drop it."""
    scratch = pgdump.create_scratch_database()
    try:
        started = time.monotonic()
        pgdump.restore(dump, scratch, lock_timeout=lock_timeout)
        clock["scratch_restore"] = round(time.monotonic() - started, 2)
        with pgdump.connect(scratch) as conn, conn.cursor() as cursor:
            found = facts(cursor)
        found["schema_differences"] = schema_differences(found["migrations"])
        if found["schema_differences"]:  # an older or newer schema: the ORM cannot read its audit log
            found["chain_checked"], found["chain_problems"], found["chain_first"] = False, 0, []
        else:
            with _django_alias(scratch) as alias:
                found["chain_problems"], found["chain_first"] = _chain(alias)
            found["chain_checked"] = True
    finally:
        pgdump.drop(scratch)
    return found


def _refusal(found: dict) -> str:
    """Why the live database may not be replaced by what the scratch copy holds; "" when it may."""
    if found["schema_differences"]:
        return D(
            N_(
                "This backup was taken with other database migrations than this Kubemate has (%(apps)s); restore it "
                "with the Kubemate version that took it."
            ),
            apps="; ".join(found["schema_differences"])[:300],
        )
    if found["chain_problems"]:
        return D(
            N_("The audit chain in this backup is broken (%(count)s problems, first: %(first)s); it is not restored."),
            count=found["chain_problems"],
            first=found["chain_first"][0],
        )
    if not found["users"]:
        return D(N_("This backup holds no users; it is not restored."))
    return ""


def _fetch(target: Target | None, key: str, file: Path | None, folder: Path, say) -> tuple[Path, str, str]:
    """(the sealed file, its SHA-256, its name for people): downloaded from the target, or the file given."""
    if file is not None or target is None:
        path = Path(file)
        if not path.is_file():
            raise RestoreRefused(D(N_("%(file)s is not a file."), file=str(path)[:200]))
        return path, s3.file_sha256(path), path.name
    storage = s3.access_for(target)
    if not s3.exists(storage, key):
        raise RestoreRefused(
            D(
                N_("There is no object %(key)s on %(target)s; list the backups with --list."),
                key=key,
                target=target.name,
            )
        )
    say(D(N_("Downloading %(key)s from %(target)s."), key=key, target=target.name))
    sealed = folder / f"backup{SUFFIX}"
    sha = s3.download(storage, key, sealed, max_bytes=settings.KUBEMATE_BACKUP_MAX_MB * MiB)
    return sealed, sha, key


def restore(
    *,
    actor,
    target: Target | None,
    key: str = "",
    file: Path | None = None,
    dry_run: bool,
    stdout: TextIO | None = None,
    lock_timeout: float = 60,
) -> dict:
    """Restore Kubemate's database from a sealed dump (``key`` on ``target``, or ``file``) as ``actor``; a dry run
    changes nothing. Returns the report (plain values; ``describe`` words it). See the module's docstring."""
    if not may_manage(actor):
        raise RestoreRefused(
            D(N_("%(user)s may not back up or restore Kubemate's own database (backups.admin)."), user=_who(actor))
        )
    if (file is None) == (target is None or not key):
        raise RestoreRefused(D(N_("Name one backup: a storage target and the object's key, or a file.")))
    if not dry_run and connection.in_atomic_block:
        raise RestoreRefused(D(N_("A restore cannot run inside a transaction.")))
    say = _speaker(stdout)
    try:
        version_note = pgdump.check_versions("pg_restore")
    except pgdump.PgError as exc:  # an older pg_restore may still read the dump; if not, it says so below
        version_note = sentence_of(exc)
    if version_note:
        say(version_note)
    clock: dict[str, float] = {}
    folder = _workdir()
    try:
        started = time.monotonic()
        sealed, sha, source = _fetch(target, key, file, folder, say)
        clock["fetch"] = round(time.monotonic() - started, 2)
        dump = folder / "kubemate.dump"
        say(D(N_("Opening the sealed backup (SHA-256 %(sha)s)."), sha=sha))
        try:
            dump_bytes = seal.open_sealed(sealed, dump, max_bytes=settings.KUBEMATE_BACKUP_MAX_MB * MiB)
        except seal.SealError as exc:  # altered, cut off, sealed with another key, or a bomb
            raise RestoreRefused(sentence_of(exc)) from None
        listing = pgdump.entries(dump)
        if listing.entries == 0 or listing.table_data == 0:
            raise RestoreRefused(D(N_("This backup holds no tables; it is not restored.")))
        say(
            D(
                N_("A dump of %(created)s: %(entries)s entries, %(tables)s tables. Checking it in a scratch database."),
                created=listing.created_at,
                entries=listing.entries,
                tables=listing.tables,
            )
        )
        found = _check_in_scratch(dump, lock_timeout, clock)
        report: dict = {
            "dry_run": dry_run,
            "source": source,
            "target": target.name if target is not None else "",
            "sha256": sha,
            "sealed_bytes": sealed.stat().st_size,
            "dump_bytes": dump_bytes,
            "dumped_at": listing.created_at,
            "server_version": listing.server_version,
            "pg_dump_version": listing.dump_version,
            "entries": listing.entries,
            "tables": listing.tables,
            "backup": found,
            "live": _live_facts(),
            "refusal": _refusal(found),
            "version_note": version_note,
            "restored": False,
            "seconds": clock,
        }
        if dry_run:
            return report
        if report["refusal"]:
            raise RestoreRefused(report["refusal"])
        return _restore_live(actor, dump, report, lock_timeout, say)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _who(actor) -> str:
    return actor.get_username() if actor is not None else D(N_("nobody"))


def _restore_live(actor, dump: Path, report: dict, lock_timeout: float, say) -> dict:
    username = actor.get_username()
    before = report["live"]
    say(D(N_("Restoring the live database in one transaction.")))
    connections.close_all()  # Django's own sessions hold no lock the restore waits for
    started = time.monotonic()
    try:
        pgdump.restore(dump, pgdump.live_settings(), lock_timeout=lock_timeout)
    except Failure as exc:
        report["seconds"]["restore"] = round(time.monotonic() - started, 2)
        _record(actor, username, report, before, None, failed=sentence_of(exc))
        raise
    report["seconds"]["restore"] = round(time.monotonic() - started, 2)
    count, first = _chain(DEFAULT_DB_ALIAS)
    after = _live_facts()
    # The person as the restored database knows them (their row may have another state, or none, in the backup).
    restored_actor = get_user_model().objects.filter(username=username).first()
    failed = ""
    if count:
        failed = D(
            N_("The database was restored but its audit chain is broken (%(count)s problems, first: %(first)s)."),
            count=count,
            first=first[0],
        )
    event, row = _record(restored_actor, username, report, before, after, failed=failed)
    report.update(restored=not failed, after=_counts(_live_facts()), restore_id=row.pk, event_seq=event.seq)
    if failed:
        raise RestoreRefused(failed)
    return report


def _record(actor, username: str, report: dict, before: dict, after: dict | None, *, failed: str):
    """One audit event and one Restore row for a real run, in one transaction; the backup row the dump was taken
    with (Running in its own dump) is settled as the good backup it is."""
    now = timezone.now()
    detail = {
        "source": report["source"],
        "target": report["target"],
        "sha256": report["sha256"],
        "dumped_at": report["dumped_at"],
        "before": _counts(before),
        "after": _counts(after) if after is not None else None,
        "seconds": report["seconds"],
    }
    if failed:
        detail["reason"] = failed[:400]
    with transaction.atomic():
        if after is not None:
            detail["settled_backup"] = _settle(report)
        row = Restore.objects.create(
            kind=Kind.DATABASE,
            backup_name=report["source"][:200],
            name=f"database-{now:%Y%m%dT%H%M%SZ}",
            preview={"backup": _counts(report["backup"]), "dumped_at": report["dumped_at"]},
            changed={"before": _counts(before), "after": _counts(after) if after is not None else None},
            status=Restore.Status.FAILED if failed else Restore.Status.SUCCEEDED,
            message=fit(failed, 500),
            actor=actor,
            finished_at=now,
        )
        event = audit.record(
            actor=actor,
            actor_name=username,
            action="backups.database.restored" if after is not None else "backups.database.restore_failed",
            result=AuditEvent.Result.FAILURE if failed else AuditEvent.Result.SUCCESS,
            kind="Database",
            name=str(pgdump.live_settings()["NAME"]),
            detail=detail,
            reason="",
        )
    return event, row


def _settle(report: dict) -> str:
    """Mark the restored copy's row of this very backup (it was Running when its dump was taken) Succeeded, so the
    job reaper does not end it as failed; its name, or "" when the backup has no row."""
    name = Path(report["source"]).name.removesuffix(SUFFIX)
    row = Backup.objects.filter(kind=Kind.DATABASE, name=name, status=Backup.Status.RUNNING).first()
    if row is None:
        return ""
    key = row.target.key("database", f"{row.name}{SUFFIX}") if row.target is not None else row.key
    Backup.objects.filter(pk=row.pk).update(
        status=Backup.Status.SUCCEEDED,
        key=key,
        size_bytes=report["sealed_bytes"],
        sha256=report["sha256"],
        finished_at=timezone.now(),
    )
    if row.job_id is not None:
        Job.objects.filter(pk=row.job_id, status__in=[Job.Status.PENDING, Job.Status.RUNNING]).update(
            status=Job.Status.SUCCEEDED, progress=100, finished_at=timezone.now()
        )
    return row.name


# Words ------------------------------------------------------------------------------------------------------------


def describe(report: dict) -> list[str]:
    """The report as deferred sentences, for the command to print in the installation's language."""
    backup, live = report["backup"], report["live"]
    lines = [
        D(
            N_(
                "Backup %(source)s: %(sealed)s bytes sealed, SHA-256 %(sha)s; a pg_dump (%(version)s) of PostgreSQL "
                "%(server)s taken at %(dumped_at)s: %(entries)s entries, %(tables)s tables."
            ),
            source=report["source"],
            sealed=report["sealed_bytes"],
            sha=report["sha256"],
            version=report["pg_dump_version"].split(" ")[0],
            server=report["server_version"].split(" ")[0],
            dumped_at=report["dumped_at"],
            entries=report["entries"],
            tables=report["tables"],
        ),
        D(
            N_(
                "The backup holds %(users)s users, %(releases)s releases and %(events)s audit events (the chain "
                "ends at event %(seq)s)."
            ),
            users=_n(backup["users"]),
            releases=_n(backup["releases"]),
            events=_n(backup["audit_events"]),
            seq=backup["audit_seq"],
        ),
        D(
            N_(
                "The live database holds %(users)s users, %(releases)s releases and %(events)s audit events (the "
                "chain ends at event %(seq)s)."
            ),
            users=_n(live["users"]),
            releases=_n(live["releases"]),
            events=_n(live["audit_events"]),
            seq=live["audit_seq"],
        ),
    ]
    if backup["chain_checked"] and not backup["chain_problems"]:
        lines.append(D(N_("The audit chain in the backup is intact.")))
    if report["refusal"]:
        lines.append(report["refusal"])
    if report["dry_run"]:
        lines.append(
            D(
                N_(
                    "Dry run: nothing was changed; the scratch database was dropped. Checked in %(seconds)s s "
                    "(restoring into the scratch database)."
                ),
                seconds=report["seconds"].get("scratch_restore", "?"),
            )
        )
        if not report["refusal"]:
            lines.append(
                D(
                    N_("A restore would bring back the database as it was at %(dumped_at)s."),
                    dumped_at=report["dumped_at"],
                )
            )
    elif report.get("restored"):
        after = report["after"]
        lines.append(
            D(
                N_(
                    "Restored in %(seconds)s s. The database holds %(users)s users, %(releases)s releases and "
                    "%(events)s audit events; the audit chain is intact up to event %(seq)s, the restore's own."
                ),
                seconds=report["seconds"].get("restore", "?"),
                users=_n(after["users"]),
                releases=_n(after["releases"]),
                events=_n(after["audit_events"]),
                seq=after["audit_seq"],
            )
        )
    return lines


def _n(value) -> str:
    return "-" if value is None else str(value)
