"""Database checks: each registered database (PostgreSQL, MySQL / MariaDB), read through ``apps.inspection.databases``
(read-only session, timeouts, bounded rows), judged against the thresholds.

One session is opened per run and database (``session_of``) and shared by that database's checks; the runner checks
databases one after another, so only the current database's session is kept open (it is closed when the runner moves
on, and when the run's context is dropped). A database that does not answer is the finding of ``db.reachable``;
every other database check is then "not checked" with the same sentence, without a second connection attempt.

Statement times come from pg_stat_statements (PostgreSQL) and performance_schema's statement digests (MySQL), both
cumulative since their last reset. Table sizes of the largest tables are kept as measurements of the run
(``ctx.record``) and compared with the previous run that measured the same table (``db.*.table_growth``).
Everything is read for the registered database only (its tables, statements and sessions), except what belongs to
the whole server: connections, replication, and (MySQL) InnoDB transactions, whose undo the whole server keeps.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import timedelta

from django.utils.translation import gettext_lazy as _

from apps.core.deferred import N_, join
from apps.core.deferred import text as D
from apps.inspection.checks.base import CannotCheck, Domain, Finding, Severity, check
from apps.inspection.databases import MYSQL, POSTGRESQL, DatabaseError, QueryFailed, Session, address_of, connect
from apps.inspection.models import DatabaseTarget

DATABASES = Domain.DATABASES
MiB = 2**20
MAX_TABLES = 100  # the largest tables measured per run and database (growth is judged on these)
MAX_LISTED = 20  # statements, sessions or replicas reported per check and database
HISTORY_DAYS = 90  # how far back the previous measurement of a table is looked for
TEXT = 300  # characters of a statement shown in a finding


def target_of(target: DatabaseTarget) -> str:
    # The runner's label of a database target (runner.target_label, which this module cannot import: the runner
    # imports the catalogue, which imports the checks).
    return f"database:{target.name}"


def shown(value: float) -> str:
    """A measured value or a threshold as people write it: 250, 0.5, 1234.6 (never 1.2346e+03)."""
    value = round(float(value), 1)
    return str(int(value)) if value.is_integer() else f"{value:.1f}"


def mib(size: float) -> str:
    return shown(size / MiB)


def one_line(text, limit: int = TEXT) -> str:
    return " ".join(str(text or "").split())[:limit]


def database_check(id: str, engine: str, severity: str, title, why, fix):
    return check(id, DATABASES, severity, title, why, fix, target="database", engine=engine)


# The session of the run ------------------------------------------------------------------------------------------


def _close_current(current: dict) -> None:
    session = current.pop("session", None)
    if session is not None:
        session.close()


def _current(ctx) -> dict:
    current: dict = {}
    # The last database's session is closed when the run's context goes away.
    weakref.finalize(ctx, _close_current, current)
    return current


def _open(target: DatabaseTarget):
    try:
        return connect(target)
    except DatabaseError as exc:
        return exc


def session_of(ctx, target: DatabaseTarget) -> Session:
    """The database's session for this run, opened once; CannotCheck with the reason when it does not answer."""
    current = ctx.once(("databases", "current"), lambda: _current(ctx))
    if current.get("pk") != target.pk:
        # The runner checks databases one after another: keep one session open, not one per database.
        _close_current(current)
        ctx.forget("database")
        current["pk"] = target.pk
    got = ctx.once(("database", target.pk), lambda: _open(target))
    if isinstance(got, DatabaseError):
        raise CannotCheck(got.stored)
    current["session"] = got
    return got


def ask(ctx, target: DatabaseTarget, read):
    """``read(session)``'s answer; a statement that fails makes the check "not checked" with its sentence."""
    session = session_of(ctx, target)
    try:
        return read(session)
    except DatabaseError as exc:
        raise CannotCheck(exc.stored) from None


# Reachable ---------------------------------------------------------------------------------------------------------


@database_check(
    "db.reachable",
    "",
    Severity.CRITICAL,
    _("The database answers Kubemate's read-only account"),
    _(
        "A database that refuses connections or does not answer stops the applications that use it; it also "
        "leaves every other database check unable to look."
    ),
    _(
        "Check that the server runs and listens on the registered address, that the firewall lets Kubemate in, "
        "and that the read-only account and its password are still valid."
    ),
)
def reachable(ctx, target: DatabaseTarget):
    try:
        session_of(ctx, target)
    except CannotCheck as exc:
        yield Finding(
            subject=target.name,
            message=exc.stored,
            facts={"engine": target.engine, "address": address_of(target).where, "database": target.database},
        )


# Statements --------------------------------------------------------------------------------------------------------


SLOW_STATEMENT = N_("Statement %(statement)s takes %(mean)s ms on average over %(calls)s calls (limit %(limit)s ms).")


def _slow(statement: str, key: str, calls, mean_ms, total_ms, limit: float) -> Finding:
    text = one_line(statement) or "?"
    return Finding(
        subject=f"{one_line(text, 150)} ({key})",
        message=D(SLOW_STATEMENT, statement=text, mean=shown(mean_ms), calls=int(calls), limit=shown(limit)),
        facts={"statement": text, "calls": int(calls), "mean_ms": round(float(mean_ms), 1),
               "total_ms": round(float(total_ms), 1), "id": key},
    )  # fmt: skip


def _pg_statement_stats(session: Session, target: DatabaseTarget) -> str:
    """The mean-time column of the installed pg_stat_statements; CannotCheck saying how to install it."""
    version = session.value("SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'")
    if version is None:
        sentence = N_(
            "pg_stat_statements is not installed in database %(database)s of %(name)s, so PostgreSQL does not "
            "record statement times. Add pg_stat_statements to shared_preload_libraries in postgresql.conf, "
            "restart PostgreSQL, then run CREATE EXTENSION pg_stat_statements; in that database."
        )
        raise CannotCheck(D(sentence, database=target.database, name=target.name))
    major, _dot, minor = str(version).partition(".")
    newer = (int(major or 0), int(minor or 0)) >= (1, 8)  # PostgreSQL 13 renamed mean_time to mean_exec_time
    return "mean_exec_time" if newer else "mean_time"


@database_check(
    "db.postgresql.slow_statements",
    POSTGRESQL,
    Severity.WARNING,
    _("No statement is slow on average"),
    _(
        "A statement that is slow every time it runs holds connections and locks longer, and the applications "
        "waiting for it time out under load."
    ),
    _(
        "Read the statement's plan (EXPLAIN (ANALYZE, BUFFERS)), add the missing index or rewrite it; "
        "pg_stat_statements_reset() starts the averages anew after a fix."
    ),
)
def postgresql_slow_statements(ctx, target: DatabaseTarget):
    limit = ctx.threshold("db.slow_statement_ms")

    def read(session: Session):
        column = _pg_statement_stats(session, target)
        return session.rows(
            f"SELECT queryid::text, left(query, 1000), calls, {column}, total_{column.removeprefix('mean_')} "  # noqa: S608 (only this module's names and limits; values are parameters)
            "FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            f"AND calls > 0 AND {column} > %s ORDER BY {column} DESC LIMIT {MAX_LISTED}",
            (limit,),
        )

    for queryid, statement, calls, mean_ms, total_ms in ask(ctx, target, read):
        yield _slow(statement, f"queryid {queryid}", calls, mean_ms, total_ms, limit)


def _mysql_digests_on(session: Session, target: DatabaseTarget) -> None:
    if not session.value("SELECT @@performance_schema"):
        sentence = N_(
            "performance_schema is off on database %(name)s, so the server does not record statement times. Set "
            "performance_schema=ON in the server's configuration and restart it."
        )
        raise CannotCheck(D(sentence, name=target.name))
    enabled = session.value("SELECT ENABLED FROM performance_schema.setup_consumers WHERE NAME = 'statements_digest'")
    if str(enabled or "").upper() != "YES":
        sentence = N_(
            "The statements_digest consumer of performance_schema is disabled on database %(name)s. Enable it: "
            "UPDATE performance_schema.setup_consumers SET ENABLED = 'YES' WHERE NAME = 'statements_digest';"
        )
        raise CannotCheck(D(sentence, name=target.name))


@database_check(
    "db.mysql.slow_statements",
    MYSQL,
    Severity.WARNING,
    _("No statement is slow on average"),
    _(
        "A statement that is slow every time it runs holds connections and row locks longer, and the applications "
        "waiting for it time out under load."
    ),
    _(
        "Read the statement's plan (EXPLAIN ANALYZE, or ANALYZE FORMAT=JSON on MariaDB), add the missing index or "
        "rewrite it; TRUNCATE TABLE performance_schema.events_statements_summary_by_digest starts the averages anew."
    ),
)
def mysql_slow_statements(ctx, target: DatabaseTarget):
    limit = ctx.threshold("db.slow_statement_ms")

    def read(session: Session):
        _mysql_digests_on(session, target)
        # Timer columns are in picoseconds.
        return session.rows(
            "SELECT DIGEST, LEFT(DIGEST_TEXT, 1000), COUNT_STAR, AVG_TIMER_WAIT / 1000000000, "  # noqa: S608 (only this module's names and limits; values are parameters)
            "SUM_TIMER_WAIT / 1000000000 FROM performance_schema.events_statements_summary_by_digest "
            f"WHERE SCHEMA_NAME = %s AND COUNT_STAR > 0 AND AVG_TIMER_WAIT > %s "
            f"ORDER BY AVG_TIMER_WAIT DESC LIMIT {MAX_LISTED}",
            (target.database, int(limit * 1_000_000_000)),
        )

    for digest, statement, calls, mean_ms, total_ms in ask(ctx, target, read):
        yield _slow(statement, f"digest {str(digest or '-')[:16]}", calls, mean_ms, total_ms, limit)


# Tables --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    bytes: int
    rows: int

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def key(self) -> str:
        return f"table:{self.label}:bytes"


def _read_tables(session: Session, target: DatabaseTarget) -> list[Table]:
    if target.engine == POSTGRESQL:
        rows = session.rows(
            "SELECT n.nspname, c.relname, pg_total_relation_size(c.oid), GREATEST(c.reltuples, 0)::bigint "  # noqa: S608 (only this module's names and limits; values are parameters)
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            f"AND n.nspname !~ '^pg_(toast|temp)' ORDER BY 3 DESC LIMIT {MAX_TABLES}",
            limit=MAX_TABLES,
        )
    else:
        # InnoDB's sizes here are its statistics: refreshed by ANALYZE TABLE and after a tenth of the rows changed.
        rows = session.rows(
            "SELECT TABLE_SCHEMA, TABLE_NAME, COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0), "  # noqa: S608 (only this module's names and limits; values are parameters)
            "COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
            f"AND TABLE_TYPE = 'BASE TABLE' ORDER BY 3 DESC LIMIT {MAX_TABLES}",
            (target.database,),
            limit=MAX_TABLES,
        )
    return [Table(str(s), str(n), int(size or 0), int(count or 0)) for s, n, size, count in rows]


def tables_of(ctx, target: DatabaseTarget) -> list[Table]:
    """The largest tables, read once per run and database and kept as the run's measurements."""

    def build() -> list[Table]:
        tables = ask(ctx, target, lambda session: _read_tables(session, target))
        for table in tables:
            ctx.record(target_of(target), table.key, table.bytes)
        return tables

    return ctx.once(("database", target.pk, "tables"), build)


def largest_tables(ctx, target: DatabaseTarget):
    limit = ctx.threshold("db.table_size_mb")
    sentence = N_("Table %(table)s takes %(size)s MiB, indexes included (about %(rows)s rows; limit %(limit)s MiB).")
    for rank, table in enumerate(tables_of(ctx, target), start=1):
        if table.bytes > limit * MiB:
            yield Finding(
                subject=table.label,
                message=D(sentence, table=table.label, size=mib(table.bytes), rows=table.rows, limit=shown(limit)),
                facts={"bytes": table.bytes, "rows": table.rows, "rank": rank},
            )


def table_growth(ctx, target: DatabaseTarget):
    limit = ctx.threshold("db.table_growth_percent")
    floor = ctx.threshold("db.table_growth_min_mb", 64)
    since = ctx.now - timedelta(days=HISTORY_DAYS)
    sentence = N_(
        "Table %(table)s grew by %(percent)s%% since %(since)s, from %(before)s MiB to %(after)s MiB "
        "(limit %(limit)s%%)."
    )
    for table in tables_of(ctx, target):
        if table.bytes < floor * MiB:
            continue
        earlier = ctx.history(target_of(target), table.key, since)
        if not earlier or earlier[-1][1] <= 0:
            continue
        when, before = earlier[-1]
        growth = (table.bytes - before) / before * 100
        if growth > limit:
            yield Finding(
                subject=table.label,
                message=D(
                    sentence,
                    table=table.label,
                    percent=shown(growth),
                    since=f"{when:%Y-%m-%d %H:%M} UTC",
                    before=mib(before),
                    after=mib(table.bytes),
                    limit=shown(limit),
                ),
                facts={"bytes": table.bytes, "before_bytes": int(before), "growth_percent": round(growth, 1),
                       "since": when.isoformat()},
            )  # fmt: skip


LARGEST_TITLE = _("No table is larger than the size limit")
LARGEST_WHY = _(
    "A very large table makes backups, restores, VACUUM or ALTER TABLE take hours and fills the disk unnoticed; "
    "the largest tables are where the space goes."
)
GROWTH_TITLE = _("No large table grows fast between two inspections")
GROWTH_WHY = _(
    "A table that suddenly grows fast (a missing clean-up job, a logging loop, bloat) fills the disk before "
    "anyone looks; the size limit only speaks once it is too late."
)
GROWTH_FIX = _(
    "Ask the application's owners whether the growth is expected; archive or partition old rows, or plan the "
    "disk space it will need."
)

database_check(
    "db.postgresql.largest_tables",
    POSTGRESQL,
    Severity.INFO,
    LARGEST_TITLE,
    LARGEST_WHY,
    _(
        "Archive or partition old rows (declarative partitioning by date), drop what is no longer needed, and "
        "check bloat: VACUUM FULL or pg_repack reclaim the space of deleted rows."
    ),
)(largest_tables)
database_check(
    "db.mysql.largest_tables",
    MYSQL,
    Severity.INFO,
    LARGEST_TITLE,
    LARGEST_WHY,
    _(
        "Archive or partition old rows (PARTITION BY RANGE on a date), drop what is no longer needed; OPTIMIZE "
        "TABLE reclaims the space of deleted rows."
    ),
)(largest_tables)
database_check("db.postgresql.table_growth", POSTGRESQL, Severity.WARNING, GROWTH_TITLE, GROWTH_WHY, GROWTH_FIX)(
    table_growth
)
database_check("db.mysql.table_growth", MYSQL, Severity.WARNING, GROWTH_TITLE, GROWTH_WHY, GROWTH_FIX)(table_growth)


# Connections -------------------------------------------------------------------------------------------------------


def _connections(target: DatabaseTarget, limit: float, used: int, maximum: int, full_at: int, facts: dict):
    """A finding when ``used`` of ``maximum`` connections is above ``limit`` percent; critical from ``full_at`` on,
    where the server starts refusing the applications."""
    if maximum <= 0:
        return
    percent = used / maximum * 100
    if percent > limit:
        sentence = N_(
            "%(used)s of the %(max)s connections of database %(name)s are in use (%(percent)s%%, limit %(limit)s%%)."
        )
        yield Finding(
            subject=target.name,
            message=D(sentence, used=used, max=maximum, name=target.name, percent=shown(percent), limit=shown(limit)),
            severity=Severity.CRITICAL if used >= full_at else "",
            facts={"used": used, "max": maximum, "percent": round(percent, 1), **facts},
        )


CONNECTIONS_TITLE = _("Connections stay below the server's maximum")
CONNECTIONS_WHY = _(
    "When every connection is taken the server refuses new ones: applications fail at once, and an "
    "administrator may not get in to help."
)


@database_check(
    "db.postgresql.connections",
    POSTGRESQL,
    Severity.WARNING,
    CONNECTIONS_TITLE,
    CONNECTIONS_WHY,
    _(
        "Put a pool in front of the database (PgBouncer) or shrink the applications' pools; find who holds the "
        "connections in pg_stat_activity. Raise max_connections only with the memory it needs."
    ),
)
def postgresql_connections(ctx, target: DatabaseTarget):
    used, maximum, reserved = ask(
        ctx,
        target,
        lambda s: s.one(
            "SELECT count(*) FILTER (WHERE backend_type = 'client backend'), "
            "current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int "
            "FROM pg_stat_activity"
        ),
    )
    # The last superuser_reserved_connections are for superusers only: applications are refused from there on.
    full_at = int(maximum) - int(reserved)
    limit = ctx.threshold("db.connections_percent")
    yield from _connections(target, limit, int(used), int(maximum), full_at, {"superuser_reserved": int(reserved)})


@database_check(
    "db.mysql.connections",
    MYSQL,
    Severity.WARNING,
    CONNECTIONS_TITLE,
    CONNECTIONS_WHY,
    _(
        "Shrink the applications' connection pools or put ProxySQL / MaxScale in front; find who holds the "
        "connections in SHOW PROCESSLIST. Raise max_connections only with the memory it needs."
    ),
)
def mysql_connections(ctx, target: DatabaseTarget):
    def read(session: Session):
        status = dict(session.rows("SHOW GLOBAL STATUS WHERE Variable_name IN ('Threads_connected', "
                                   "'Max_used_connections')"))  # fmt: skip
        return int(status.get("Threads_connected") or 0), int(session.value("SELECT @@max_connections") or 0), status

    used, maximum, status = ask(ctx, target, read)
    peak = {"max_used": int(status.get("Max_used_connections") or 0)}
    full_at = int(maximum * 0.95)
    yield from _connections(target, ctx.threshold("db.connections_percent"), used, maximum, full_at, peak)


# Replication -------------------------------------------------------------------------------------------------------


def _pg_sees_all_sessions(session: Session, target: DatabaseTarget) -> None:
    """CannotCheck unless the account sees other sessions' state (pg_read_all_stats, part of pg_monitor): without
    it PostgreSQL hides their state and times, and a check would pass without having looked."""
    allowed = session.value(
        "SELECT rolsuper OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') FROM pg_roles "
        "WHERE rolname = current_user"
    )
    if not allowed:
        sentence = N_(
            "User %(user)s of database %(name)s cannot see the state of other sessions and standbys. Grant it the "
            "monitoring role: GRANT pg_monitor TO %(user)s;"
        )
        raise CannotCheck(D(sentence, user=target.username, name=target.name))


REPLICATION_FIX_PG = _(
    "Look at the standby's log and pg_stat_wal_receiver: resume a paused replay (pg_wal_replay_resume()), end "
    "long queries on the standby that hold replay back, or give the network and disk the bandwidth the WAL needs."
)


@database_check(
    "db.postgresql.replication_lag",
    POSTGRESQL,
    Severity.CRITICAL,
    _("Standbys replay the primary's changes without lag"),
    _(
        "A standby that lags behind loses the latest transactions when it is promoted after a failure, and "
        "reports read from it are out of date."
    ),
    REPLICATION_FIX_PG,
)
def postgresql_replication_lag(ctx, target: DatabaseTarget):
    limit = ctx.threshold("db.replication_lag_seconds")

    def read(session: Session):
        _pg_sees_all_sessions(session, target)
        if session.value("SELECT pg_is_in_recovery()"):
            return "standby", session.one(
                # Everything received replayed: nothing is waiting, whatever the age of the last transaction (an
                # idle primary sends none). WAL waiting and nothing replayed since the standby started: behind by
                # at least that long.
                "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
                "ELSE extract(epoch FROM now() - "
                "COALESCE(pg_last_xact_replay_timestamp(), pg_postmaster_start_time())) END, "
                "pg_is_wal_replay_paused(), (SELECT count(*) FROM pg_stat_wal_receiver), "
                "COALESCE(pg_last_wal_receive_lsn()::text, ''), COALESCE(pg_last_wal_replay_lsn()::text, '')"
            )
        return "primary", session.rows(
            "SELECT application_name, COALESCE(host(client_addr), 'local'), state, "  # noqa: S608 (only this module's names and limits; values are parameters)
            "COALESCE(extract(epoch FROM replay_lag), 0), sync_state FROM pg_stat_replication "
            f"ORDER BY application_name, client_addr LIMIT {MAX_LISTED}"
        )

    role, found = ask(ctx, target, read)
    if role == "standby":
        lag, paused, receivers, received, replayed = found
        lag = float(lag)
        facts = {"role": "standby", "lag_seconds": round(lag, 1), "paused": bool(paused), "received": received,
                 "replayed": replayed, "streaming": bool(receivers)}  # fmt: skip
        problems = []
        if not receivers:
            problems.append(D(N_("Standby %(name)s receives no WAL from its primary (no WAL receiver runs)."),
                              name=target.name))  # fmt: skip
        if lag > limit:
            problems.append(
                D(
                    N_("Standby %(name)s replays %(lag)s s behind its primary (limit %(limit)s s)."),
                    name=target.name,
                    lag=shown(lag),
                    limit=shown(limit),
                )
            )
        if problems and paused:
            problems.append(D(N_("Its replay is paused.")))
        if problems:
            yield Finding(subject=target.name, message=join(*problems), facts=facts)
        return
    for application, client, state, lag, sync_state in found:
        lag = float(lag)
        if lag > limit or state != "streaming":
            sentence = N_(
                "Standby %(standby)s (%(client)s) replays %(lag)s s behind primary %(name)s (limit %(limit)s s); "
                "its state is %(state)s."
            )
            yield Finding(
                subject=f"{application}@{client}",
                message=D(sentence, standby=application, client=client, lag=shown(lag), name=target.name,
                          limit=shown(limit), state=state),
                facts={"role": "primary", "standby": application, "client": client, "state": state,
                       "lag_seconds": round(lag, 1), "sync_state": sync_state},
            )  # fmt: skip


def _field(row: dict, *names: str):
    """The first of ``names`` present in a SHOW ... STATUS row (MySQL 8.0.22 renamed Slave/Master to
    Replica/Source; MariaDB keeps the old names)."""
    for name in names:
        if name in row:
            return row[name]
    return None


def _replica_status(session: Session) -> list[dict]:
    if session.mariadb:
        return session.named("SHOW ALL SLAVES STATUS", limit=MAX_LISTED)
    try:
        return session.named("SHOW REPLICA STATUS", limit=MAX_LISTED)
    except QueryFailed:  # before MySQL 8.0.22
        return session.named("SHOW SLAVE STATUS", limit=MAX_LISTED)


@database_check(
    "db.mysql.replication_lag",
    MYSQL,
    Severity.CRITICAL,
    _("Replicas apply the source's changes without lag"),
    _(
        "A replica whose IO or SQL thread stopped, or that lags behind, loses the latest transactions when it is "
        "promoted after a failure, and reports read from it are out of date."
    ),
    _(
        "Read Last_IO_Error and Last_SQL_Error in SHOW REPLICA STATUS, fix the cause (network, credentials, a "
        "conflicting row), then START REPLICA; for lag, look for long statements and missing primary keys."
    ),
)
def mysql_replication_lag(ctx, target: DatabaseTarget):
    limit = ctx.threshold("db.replication_lag_seconds")
    for row in ask(ctx, target, _replica_status):
        host = one_line(_field(row, "Source_Host", "Master_Host"), 200)
        port = _field(row, "Source_Port", "Master_Port")
        channel = one_line(_field(row, "Connection_name", "Channel_Name", "Channel_name"), 64)
        source = f"{host}:{port}" + (f" ({channel})" if channel else "")
        io = str(_field(row, "Replica_IO_Running", "Slave_IO_Running") or "")
        sql = str(_field(row, "Replica_SQL_Running", "Slave_SQL_Running") or "")
        lag = _field(row, "Seconds_Behind_Source", "Seconds_Behind_Master")
        io_error = one_line(_field(row, "Last_IO_Error"), 200)
        sql_error = one_line(_field(row, "Last_SQL_Error"), 200)
        problems = []
        if io != "Yes":
            sentence = N_("The IO thread of replica %(name)s is %(state)s: it receives no changes from %(source)s.")
            problems.append(D(sentence, name=target.name, state=io or "No", source=source))
            if io_error:
                problems.append(D(N_("Last IO error: %(error)s"), error=io_error))
        if sql != "Yes":
            sentence = N_("The SQL thread of replica %(name)s is stopped: it applies no changes from %(source)s.")
            problems.append(D(sentence, name=target.name, source=source))
            if sql_error:
                problems.append(D(N_("Last SQL error: %(error)s"), error=sql_error))
        if lag is not None and float(lag) > limit:
            sentence = N_("Replica %(name)s applies %(lag)s s behind %(source)s (limit %(limit)s s).")
            problems.append(D(sentence, name=target.name, lag=shown(float(lag)), source=source, limit=shown(limit)))
        if problems:
            yield Finding(
                subject=f"{target.name} <- {source}",
                message=join(*problems),
                facts={"source": source, "io_running": io, "sql_running": sql,
                       "lag_seconds": None if lag is None else float(lag), "io_error": io_error,
                       "sql_error": sql_error},
            )  # fmt: skip


# Transactions --------------------------------------------------------------------------------------------------


def _pg_sessions(ctx, target: DatabaseTarget, condition: str, since_column: str, seconds: float) -> list[tuple]:
    def read(session: Session):
        _pg_sees_all_sessions(session, target)
        return session.rows(
            "SELECT pid, usename, application_name, COALESCE(host(client_addr), 'local'), state, "  # noqa: S608 (only this module's names and limits; values are parameters)
            f"extract(epoch FROM now() - {since_column}), left(query, 1000) FROM pg_stat_activity "
            "WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
            f"AND {condition} AND {since_column} < now() - make_interval(secs => %s) "
            f"ORDER BY {since_column} LIMIT {MAX_LISTED}",
            (seconds,),
        )

    return ask(ctx, target, read)


def _session_finding(sentence: str, row: tuple, limit: float) -> Finding:
    pid, user, application, client, state, seconds, statement = row
    words = {
        "pid": pid,
        "user": user or "?",
        "application": one_line(application, 64) or "-",
        "client": client,
        "seconds": shown(float(seconds)),
        "limit": shown(limit),
        "statement": one_line(statement) or "-",
    }
    return Finding(
        subject=f"pid {pid} ({user})",
        message=D(sentence, **words),
        facts={"pid": pid, "user": user, "application": words["application"], "client": client, "state": state,
               "seconds": round(float(seconds), 1), "statement": words["statement"]},
    )  # fmt: skip


LONG_WHY = _(
    "A long transaction keeps old row versions alive (VACUUM cannot clean them, tables and indexes bloat) and "
    "holds its locks: other sessions queue behind it, batch jobs overrun their window."
)
IDLE_WHY = _(
    "A session idle in a transaction holds its locks and its snapshot while doing nothing: an application that "
    "forgot to commit blocks writers and keeps VACUUM from cleaning up."
)


@database_check(
    "db.postgresql.long_transactions",
    POSTGRESQL,
    Severity.WARNING,
    _("No transaction runs for long"),
    LONG_WHY,
    _(
        "Ask the session's owner (application, client address) what it runs; split large batch jobs into smaller "
        "transactions; as a last resort, pg_cancel_backend(pid)."
    ),
)
def postgresql_long_transactions(ctx, target: DatabaseTarget):
    limit = ctx.threshold("db.long_transaction_seconds", 300)
    sentence = N_(
        "Session %(pid)s of %(user)s (%(application)s from %(client)s) has been in one transaction for "
        "%(seconds)s s (limit %(limit)s s); it runs: %(statement)s"
    )
    condition = "xact_start IS NOT NULL AND state NOT LIKE 'idle in transaction%%'"
    for row in _pg_sessions(ctx, target, condition, "xact_start", limit):
        yield _session_finding(sentence, row, limit)


@database_check(
    "db.postgresql.idle_in_transaction",
    POSTGRESQL,
    Severity.WARNING,
    _("No session sits idle in a transaction"),
    IDLE_WHY,
    _(
        "Fix the application so it commits or rolls back (connection pools: reset on return); set "
        "idle_in_transaction_session_timeout so PostgreSQL ends such sessions; pg_terminate_backend(pid) ends one now."
    ),
)
def postgresql_idle_in_transaction(ctx, target: DatabaseTarget):
    limit = ctx.threshold("db.idle_in_transaction_seconds", 60)
    sentence = N_(
        "Session %(pid)s of %(user)s (%(application)s from %(client)s) has been idle in a transaction for "
        "%(seconds)s s (limit %(limit)s s); its last statement: %(statement)s"
    )
    condition = "state LIKE 'idle in transaction%%'"
    for row in _pg_sessions(ctx, target, condition, "state_change", limit):
        yield _session_finding(sentence, row, limit)


@database_check(
    "db.mysql.long_transactions",
    MYSQL,
    Severity.WARNING,
    _("No InnoDB transaction runs long or sits idle"),
    _(
        "A long or forgotten InnoDB transaction keeps the undo history of the whole server from being purged "
        "(the history list grows, every read slows down) and holds its row locks: other sessions wait for them."
    ),
    _(
        "Ask the session's owner (user, host) what it runs; fix an application that does not commit; as a last "
        "resort, KILL the thread. innodb_lock_wait_timeout bounds how long others wait."
    ),
)
def mysql_long_transactions(ctx, target: DatabaseTarget):
    running_limit = ctx.threshold("db.long_transaction_seconds", 300)
    idle_limit = ctx.threshold("db.idle_in_transaction_seconds", 60)
    rows = ask(
        ctx,
        target,
        lambda s: s.rows(
            "SELECT t.trx_mysql_thread_id, COALESCE(p.USER, ''), COALESCE(p.HOST, ''), COALESCE(p.DB, ''), "  # noqa: S608 (only this module's names and limits; values are parameters)
            "COALESCE(p.COMMAND, ''), TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), "
            "LEFT(COALESCE(t.trx_query, ''), 1000) FROM information_schema.INNODB_TRX t "
            "LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id "
            "WHERE t.trx_mysql_thread_id <> CONNECTION_ID() AND t.trx_started < NOW() - INTERVAL %s SECOND "
            f"ORDER BY t.trx_started LIMIT {MAX_LISTED}",
            (int(min(running_limit, idle_limit)),),
        ),
    )
    for thread, user, host, schema, command, seconds, statement in rows:
        idle = command == "Sleep"
        limit = idle_limit if idle else running_limit
        if float(seconds or 0) <= limit:
            continue
        if idle:
            sentence = N_(
                "Thread %(thread)s of %(user)s from %(host)s (database %(schema)s) has held a transaction open for "
                "%(seconds)s s while idle (limit %(limit)s s)."
            )
        else:
            sentence = N_(
                "Thread %(thread)s of %(user)s from %(host)s (database %(schema)s) has been in one transaction for "
                "%(seconds)s s (limit %(limit)s s); it runs: %(statement)s"
            )
        words = {
            "thread": thread,
            "user": user or "?",
            "host": one_line(host, 200) or "?",
            "schema": schema or "-",
            "seconds": shown(float(seconds)),
            "limit": shown(limit),
            "statement": one_line(statement) or "-",
        }
        yield Finding(
            subject=f"thread {thread} ({user})",
            message=D(sentence, **words),
            facts={"thread": thread, "user": user, "host": words["host"], "database": schema, "idle": idle,
                   "seconds": int(seconds), "statement": words["statement"]},
        )  # fmt: skip
