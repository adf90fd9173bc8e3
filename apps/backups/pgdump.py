"""The one door to PostgreSQL's own tools for Kubemate's database (``settings.DATABASES["default"]``): ``pg_dump``
in its custom format (compressed by itself), ``pg_restore --list`` to read a dump's table of contents, ``pg_restore``
to put a dump back in one transaction, and the scratch database a restore is checked in first.

The connection comes from the database settings (host, port, user, name, the libpq options among ``OPTIONS``); the
password only through a private PGPASSFILE (mode 600, in a folder of mode 700, removed after the call), never in a
command line, a log or a sentence. Every call has a timeout; a tool that fails becomes ``PgError`` with the last line
it wrote to stderr. The tools are the newest PostgreSQL client installed (``tools.pg_tool``); ``check_versions``
says when it is older than the server (pg_dump refuses then) or newer (the dump is restored with that version).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from psycopg import sql
from psycopg.conninfo import make_conninfo

from apps.backups import tools
from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D

DUMP_TIMEOUT = 4 * 3600
RESTORE_TIMEOUT = 4 * 3600
LIST_TIMEOUT = 600
VERSION_TIMEOUT = 30
CONNECT_TIMEOUT = 10
STATEMENT_TIMEOUT_MS = 120_000
WATCH_SECONDS = 0.25
LOCK_WAIT_SECONDS = 120  # pg_dump waits this long for a table another session locked exclusively (a migration)
MAX_STDERR = 64 * 1024
MAX_LIST_BYTES = 64 * 1024 * 1024  # pg_restore --list of a dump with some ten thousand tables is a few MiB
MAX_TABLE_NAMES = 2000
SCRATCH_MARK = "_restore_check_"

logger = logging.getLogger(__name__)

# Keys of OPTIONS that libpq also reads from the environment; the rest (Django's own: isolation_level, pool, ...)
# are not the tools' business.
LIBPQ_ENV = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "options": "PGOPTIONS",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "service": "PGSERVICE",
    "passfile": "PGPASSFILE",
    "gssencmode": "PGGSSENCMODE",
    "krbsrvname": "PGKRBSRVNAME",
}

TOC_LINE = re.compile(r"^\d+;\s+\d+\s+\d+\s+(?P<what>.+)$")
TABLE = re.compile(r"^TABLE (?!DATA )(?P<schema>\S+) (?P<name>\S+)")
TABLE_DATA = re.compile(r"^TABLE DATA (?P<schema>\S+) (?P<name>\S+)")
CREATED = "Archive created at "
HEADER = {
    "dbname": "dbname",
    "Dumped from database version": "server_version",
    "Dumped by pg_dump version": "dump_version",
    "Compression": "compression",
    "Format": "format",
}


class PgError(Failure):
    """PostgreSQL or one of its tools refused or failed; the sentence says what happened, never the password."""


@dataclass(frozen=True)
class Listing:
    """What ``pg_restore --list`` read from a dump: its header and its table of contents, counted."""

    entries: int
    tables: int
    table_data: int
    created_at: str
    dbname: str
    server_version: str
    dump_version: str
    format: str
    compression: str
    names: tuple[str, ...]  # the tables, schema-qualified, at most MAX_TABLE_NAMES


def live_settings() -> dict:
    """The settings of Kubemate's own database (the test database's under the tests)."""
    return connections[DEFAULT_DB_ALIAS].settings_dict


def scratch_name(live: str) -> str:
    return f"{live[:32]}{SCRATCH_MARK}{secrets.token_hex(4)}".lower()


def is_scratch(name: str) -> bool:
    return SCRATCH_MARK in name


def _options(db: dict) -> dict:
    return {k: v for k, v in (db.get("OPTIONS") or {}).items() if k in LIBPQ_ENV and v not in (None, "")}


@contextmanager
def _environment(db: dict | None) -> Iterator[dict[str, str]]:
    """The environment a tool runs with: libpq's variables for ``db`` and the password in a private PGPASSFILE."""
    with tempfile.TemporaryDirectory(prefix="kubemate-pg-") as tmp:
        os.chmod(tmp, 0o700)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", tmp),
            "LC_ALL": "C.UTF-8",  # the tools' messages in English, whatever the server's locale
            "PGAPPNAME": "kubemate-backup",
            "PGCONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
            "TMPDIR": tmp,
        }
        if db is not None:
            for key, value in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER"), ("NAME", "PGDATABASE")):
                if db.get(key):
                    env[value] = str(db[key])
            for key, value in _options(db).items():
                env[LIBPQ_ENV[key]] = str(value)
            if db.get("PASSWORD"):
                passfile = Path(tmp) / "pgpass"
                escaped = str(db["PASSWORD"]).replace("\\", "\\\\").replace(":", "\\:")
                fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(f"*:*:*:*:{escaped}\n")
                env["PGPASSFILE"] = str(passfile)
        yield env


def _run(
    args: list[str], env: dict[str, str], timeout: float, *, stdout=None, watch: Callable[[], None] | None = None
) -> tuple[int, str]:
    """Run a tool: (exit code, the tail of what it wrote to stderr). PgError when it cannot start or times out.
    ``watch`` is called about four times a second while it runs."""
    tool = Path(args[0]).name
    with tempfile.TemporaryFile() as err:
        try:
            process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=stdout if stdout is not None else subprocess.DEVNULL,
                stderr=err,
                env=env,
            )
        except OSError as exc:
            raise PgError(D(N_("%(tool)s could not be started: %(error)s"), tool=tool, error=str(exc)[:200])) from None
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    code = process.wait(timeout=WATCH_SECONDS if watch is not None else timeout)
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() >= deadline:
                        raise PgError(
                            D(
                                N_("%(tool)s did not finish within %(seconds)s seconds; it was stopped."),
                                tool=tool,
                                seconds=timeout,
                            )
                        ) from None
                    if watch is not None:
                        watch()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        size = err.tell()
        err.seek(max(0, size - MAX_STDERR))
        tail = err.read().decode("utf-8", errors="replace")
    return code, tail


def _reason(stderr: str, db: dict | None = None) -> str:
    """What went wrong last: the tool's last error line on stderr (with the statement it ran, when it says it),
    else its last line; the password taken out should it ever appear."""
    lines = [" ".join(line.split()) for line in stderr.splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if re.search(r"\b(error|ERROR|FATAL):", line)]
    # pg_restore says "Command was: ..." on the line after its error
    line = " ".join(lines[errors[-1] : errors[-1] + 2]) if errors else (lines[-1] if lines else "?")
    password = str((db or {}).get("PASSWORD") or "")
    if password:
        line = line.replace(password, "***")
    return line[:300]


def _conninfo_kwargs(db: dict, dbname: str | None = None) -> dict:
    options = _options(db)
    statement = f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"
    options["options"] = f"{options.get('options', '')} {statement}".strip()
    options.setdefault("connect_timeout", CONNECT_TIMEOUT)
    kwargs = {
        "dbname": dbname or db.get("NAME"),
        "user": db.get("USER"),
        "password": db.get("PASSWORD"),
        "host": db.get("HOST"),
        "port": db.get("PORT"),
        "application_name": "kubemate-backup",
        **options,
    }
    return {k: v for k, v in kwargs.items() if v not in (None, "")}


@contextmanager
def connect(db: dict | None = None, *, dbname: str | None = None, autocommit: bool = True):
    """A psycopg connection of its own (not Django's) to ``db`` (or to another database ``dbname`` of its server)."""
    db = db if db is not None else live_settings()
    try:
        conn = psycopg.connect(**_conninfo_kwargs(db, dbname), autocommit=autocommit)
    except psycopg.Error as exc:
        raise PgError(D(N_("PostgreSQL cannot be reached: %(reason)s"), reason=_reason(str(exc), db))) from None
    try:
        yield conn
    finally:
        conn.close()


# Versions ---------------------------------------------------------------------------------------------------------


def tool_version(name: str) -> tuple[int, str]:
    """(major, full version) of ``pg_dump`` or ``pg_restore``: ``pg_dump (PostgreSQL) 15.18 (Debian ...)``."""
    with tempfile.TemporaryFile() as out:
        code, err = _run(
            [tools.pg_tool(name), "--version"], {"PATH": os.environ.get("PATH", "")}, VERSION_TIMEOUT, stdout=out
        )
        out.seek(0)
        text = out.read(4096).decode("utf-8", errors="replace")
    found = re.search(r"\)\s*(\d+)(?:\.(\d+))?", text)
    if code != 0 or found is None:
        raise PgError(D(N_("%(tool)s does not say its version: %(reason)s"), tool=name, reason=_reason(err or text)))
    return int(found.group(1)), f"{found.group(1)}.{found.group(2) or 0}"


def server_version(db: dict | None = None) -> tuple[int, str]:
    """(major, full version) of the server, e.g. (15, "15.18")."""
    with connect(db) as conn:
        number = conn.info.server_version  # 150018
        return number // 10000, f"{number // 10000}.{number % 10000}"


def check_versions(tool: str, db: dict | None = None) -> str:
    """ "" when ``tool`` (pg_dump, pg_restore) is the server's major version; a deferred sentence when it is newer
    (it works, and says so); PgError when it is older (pg_dump refuses a newer server's database)."""
    tool_major, tool_full = tool_version(tool)
    server_major, server_full = server_version(db)
    if tool_major < server_major:
        raise PgError(
            D(
                N_(
                    "%(tool)s %(tool_version)s is older than the PostgreSQL server (%(server_version)s); install the "
                    "PostgreSQL %(major)s client tools, or name them with KUBEMATE_PG_BIN."
                ),
                tool=tool,
                tool_version=tool_full,
                server_version=server_full,
                major=server_major,
            )
        )
    if tool_major > server_major:
        return D(
            N_("%(tool)s %(tool_version)s is newer than the PostgreSQL server (%(server_version)s)."),
            tool=tool,
            tool_version=tool_full,
            server_version=server_full,
        )
    return ""


# Dump, list, restore ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    id: str
    cursor: psycopg.Cursor


@contextmanager
def snapshot(db: dict | None = None) -> Iterator[Snapshot]:
    """A read-only REPEATABLE READ transaction whose snapshot is exported: what the cursor reads and what
    ``dump(..., snapshot_id=)`` writes are the same moment of the database."""
    with connect(db, autocommit=False) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT pg_export_snapshot()")
                yield Snapshot(cursor.fetchone()[0], cursor)
        except psycopg.Error as exc:
            raise PgError(D(N_("PostgreSQL refused: %(reason)s"), reason=_reason(str(exc), db))) from None
        finally:
            conn.rollback()


def dump(dest: Path, db: dict | None = None, *, snapshot_id: str = "") -> int:
    """``pg_dump -Fc --no-owner --no-privileges`` of ``db`` into ``dest``; its size."""
    db = db if db is not None else live_settings()
    args = [
        tools.pg_tool("pg_dump"),
        "--format=custom",
        "--no-owner",
        "--no-privileges",
        f"--lock-wait-timeout={LOCK_WAIT_SECONDS}s",
        f"--file={dest}",
    ]
    if snapshot_id:
        args.append(f"--snapshot={snapshot_id}")
    with _environment(db) as env:
        code, err = _run(args, env, DUMP_TIMEOUT)
    if code != 0 or not dest.exists() or dest.stat().st_size == 0:
        dest.unlink(missing_ok=True)
        raise PgError(D(N_("pg_dump failed: %(reason)s"), reason=_reason(err, db)))
    return dest.stat().st_size


def entries(path: Path) -> Listing:
    """The table of contents of a custom-format dump (``pg_restore --list``), counted; PgError when it is not one."""
    with _environment(None) as env, tempfile.TemporaryFile() as out:
        code, err = _run([tools.pg_tool("pg_restore"), "--list", str(path)], env, LIST_TIMEOUT, stdout=out)
        if code != 0:
            raise PgError(D(N_("The dump cannot be read: %(reason)s"), reason=_reason(err)))
        out.seek(0)
        header: dict[str, str] = {}
        count = tables = table_data = read = 0
        names: list[str] = []
        for raw in out:
            read += len(raw)
            if read > MAX_LIST_BYTES:
                raise PgError(
                    D(N_("The dump's table of contents is larger than %(limit)s MiB."), limit=MAX_LIST_BYTES >> 20)
                )
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            if line.startswith(";"):
                text = line[1:].strip()
                label, sep, value = text.partition(":")
                if text.startswith(CREATED):  # "Archive created at 2026-12-04 20:08:15 UTC": no colon
                    header["created_at"] = text.removeprefix(CREATED).strip()[:100]
                elif sep and label.strip() in HEADER:
                    header[HEADER[label.strip()]] = value.strip()[:200]
                continue
            found = TOC_LINE.match(line)
            if found is None:
                continue
            count += 1
            what = found.group("what")
            if match := TABLE.match(what):
                tables += 1
                if len(names) < MAX_TABLE_NAMES:
                    names.append(f"{match.group('schema')}.{match.group('name')}")
            elif TABLE_DATA.match(what):
                table_data += 1
    return Listing(
        entries=count,
        tables=tables,
        table_data=table_data,
        created_at=header.get("created_at", ""),
        dbname=header.get("dbname", ""),
        server_version=header.get("server_version", ""),
        dump_version=header.get("dump_version", ""),
        format=header.get("format", ""),
        compression=header.get("compression", ""),
        names=tuple(names),
    )


class LockWatch:
    """Bounds how long a pg_restore session waits for one lock. ``SET lock_timeout`` cannot: every archive pg_dump
    writes starts with ``SET lock_timeout = 0``. So a second session watches the restore's backend (known by its
    application name) and, once one statement has waited ``seconds`` for a lock, cancels it (``pg_cancel_backend``):
    the restore fails, its transaction rolls back, and ``sentence`` names the sessions that held the lock."""

    def __init__(self, conn: psycopg.Connection, application: str, seconds: float) -> None:
        self.conn, self.application, self.seconds = conn, application, seconds
        self.waiting: dict[int, tuple[object, float]] = {}  # pid -> (its statement's start, first seen waiting)
        self.sentence = ""

    def __call__(self) -> None:
        if self.sentence:
            return
        try:
            rows = self.conn.execute(
                "SELECT pid, query_start, wait_event_type = 'Lock', pg_blocking_pids(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (self.application,),
            ).fetchall()
            now = time.monotonic()
            for pid, statement, locked, blockers in rows:
                seen = self.waiting.get(pid)
                if not locked:
                    self.waiting.pop(pid, None)
                elif seen is None or seen[0] != statement:
                    self.waiting[pid] = (statement, now)
                elif now - seen[1] >= self.seconds:
                    self._cancel(pid, blockers)
                    return
        except psycopg.Error as exc:  # the watch is a guard, not the restore: the restore's own timeout remains
            logger.warning("the restore's lock watch failed", extra={"error": str(exc)[:200]})

    def _cancel(self, pid: int, blockers: list[int]) -> None:
        sessions = self.conn.execute(
            "SELECT coalesce(nullif(application_name, ''), usename::text, '?') || ' (' || pid || ')' "
            "FROM pg_stat_activity WHERE pid = ANY(%s) ORDER BY pid",
            (list(blockers or []),),
        ).fetchall()
        self.conn.execute("SELECT pg_cancel_backend(%s)", (pid,))
        self.sentence = D(
            N_(
                "The restore waited more than %(seconds)s seconds for a table other sessions hold (%(sessions)s); "
                "stop Kubemate's web and workers, then restore again."
            ),
            seconds=self.seconds,
            sessions=", ".join(row[0] for row in sessions[:5]) or "?",
        )


def restore(path: Path, db: dict, *, single_transaction: bool = True, lock_timeout: float = 60) -> None:
    """``pg_restore --clean --if-exists --no-owner --no-privileges --exit-on-error`` of ``path`` into ``db``: in one
    transaction by default, so a failure leaves the database as it was. No statement waits more than
    ``lock_timeout`` seconds for a lock (``LockWatch``): sessions still working on a table (web, workers) make the
    restore fail instead of hang."""
    args = [
        tools.pg_tool("pg_restore"),
        "--clean",
        "--if-exists",
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
    ]
    if single_transaction:
        args.append("--single-transaction")
    args += [f"--dbname={make_conninfo(dbname=db['NAME'])}", str(path)]
    application = f"kubemate-restore-{secrets.token_hex(4)}"
    with _environment(db) as env, connect(db) as watcher:
        env["PGAPPNAME"] = application
        watch = LockWatch(watcher, application, lock_timeout)
        code, err = _run(args, env, RESTORE_TIMEOUT, watch=watch)
    if code != 0:
        reason = watch.sentence or _reason(err, db)
        if single_transaction:
            raise PgError(D(N_("pg_restore failed; the database was left as it was: %(reason)s"), reason=reason))
        raise PgError(D(N_("pg_restore failed: %(reason)s"), reason=reason))


# The scratch database -----------------------------------------------------------------------------------------------


def create_scratch_database(db: dict | None = None) -> dict:
    """An empty database beside ``db`` (same server, encoding and collation; from template0) to restore a dump into
    before it replaces the live one; its settings (``db``'s with another NAME). Drop it with ``drop``."""
    db = db if db is not None else live_settings()
    name = scratch_name(str(db["NAME"]))
    with connect(db) as conn:
        try:
            encoding, collate, ctype = conn.execute(
                "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database "
                "WHERE datname = current_database()"
            ).fetchone()
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}").format(
                    sql.Identifier(name), sql.Literal(encoding), sql.Literal(collate), sql.Literal(ctype)
                )
            )
        except psycopg.errors.InsufficientPrivilege:
            raise PgError(
                D(
                    N_(
                        "The database user %(user)s may not create the scratch database a restore is checked in; "
                        "give it CREATEDB."
                    ),
                    user=db.get("USER") or "?",
                )
            ) from None
        except psycopg.Error as exc:
            raise PgError(
                D(N_("The scratch database could not be created: %(reason)s"), reason=_reason(str(exc), db))
            ) from None
    return {**db, "NAME": name}


def drop(scratch: dict) -> None:
    """Drop a scratch database made by ``create_scratch_database`` (its sessions ended first); never another one."""
    name = str(scratch["NAME"])
    if not is_scratch(name):
        raise PgError(D(N_("%(name)s is not a scratch database; it was not dropped."), name=name))
    with connect(scratch, dbname=str(live_settings()["NAME"])) as conn:  # a database cannot drop itself
        try:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            raise PgError(
                D(
                    N_("The scratch database %(name)s could not be dropped: %(reason)s"),
                    name=name,
                    reason=_reason(str(exc)),
                )
            ) from None


def scratch_databases(db: dict | None = None) -> list[str]:
    """Scratch databases on ``db``'s server (left by a process that was killed mid-check)."""
    with connect(db) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE strpos(datname, %s) > 0", (SCRATCH_MARK,))
        return sorted(row[0] for row in rows)
