"""The database checks (apps/inspection/checks/databases.py) through the runner, against a real PostgreSQL and a real
MariaDB (tests/plugins/databases.py), registered with their read-only accounts the way a person registers them: each
check passes on the healthy server and fails, with the measured values, once the test makes the server unhealthy
(slow statements, a big or growing table, held connections, open transactions, a paused standby, a stopped or
blocked replica). Thresholds are lowered through the template's thresholds, as a person would."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from apps.core import crypto
from apps.core.deferred import render
from apps.inspection import databases, runner
from apps.inspection.catalogue import CATALOGUE
from apps.inspection.checks.base import Domain, Severity
from apps.inspection.checks.context import Context
from apps.inspection.models import DatabaseTarget, Finding, Outcome, Run, Template
from tests.plugins.databases import APP, MINIMAL
from tests.plugins.served import free_port, wait

PASSED, FAILED, NOT_CHECKED = Outcome.Status.PASSED, Outcome.Status.FAILED, Outcome.Status.NOT_CHECKED
DB_CHECKS = sorted(k for k in CATALOGUE if k.startswith("db."))
PG_CHECKS = sorted(k for k in DB_CHECKS if CATALOGUE[k].engine in ("", "postgresql"))
MY_CHECKS = sorted(k for k in DB_CHECKS if CATALOGUE[k].engine in ("", "mysql"))


@pytest.fixture
def pg(db, inspected_postgresql):
    return databases.register_database(actor=None, name="orders", **inspected_postgresql.target())


@pytest.fixture
def my(db, inspected_mariadb):
    return databases.register_database(actor=None, name="ledger", **inspected_mariadb.target())


def run(check_id: str, target, thresholds: dict | None = None) -> runner.Result:
    return runner.run_one(Context(thresholds=thresholds), CATALOGUE[check_id], target)


def passes(check_id: str, target, thresholds: dict | None = None) -> None:
    result = run(check_id, target, thresholds)
    assert (result.status, render(result.reason), [render(f.message) for f in result.findings]) == (PASSED, "", [])


def failing(check_id: str, target, thresholds: dict | None = None) -> list:
    """The findings of a check that must fail."""
    result = run(check_id, target, thresholds)
    assert result.status == FAILED, (result.status, render(result.reason))
    return result.findings


def not_checked(check_id: str, target, thresholds: dict | None = None) -> str:
    result = run(check_id, target, thresholds)
    assert result.status == NOT_CHECKED and not result.findings
    return render(result.reason)


def inspect(template: Template) -> Run:
    return runner.execute(Run.objects.create(template=template), lambda percent, sentence: None)


def statuses(run_row: Run) -> dict[str, str]:
    return dict(Outcome.objects.filter(run=run_row).values_list("check_id", "status"))


def in_background(work) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def table_name() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


def mariadb_rows(count: int) -> str:
    """``count`` rows of about 250 bytes from MariaDB's sequence engine."""
    return f"SELECT REPEAT('x', 250) FROM bank.seq_1_to_{count}"  # noqa: S608 (a number)


def test_the_catalogue_holds_the_database_checks_each_run_against_databases_of_its_engine():
    assert len(DB_CHECKS) >= 10
    assert {CATALOGUE[k].engine for k in DB_CHECKS} == {"", "postgresql", "mysql"}
    assert len(PG_CHECKS) == 8 and len(MY_CHECKS) == 7
    for check_id in DB_CHECKS:
        check = CATALOGUE[check_id]
        assert (check.target, check.domain) == ("database", Domain.DATABASES)
        assert str(check.title) and str(check.why) and str(check.fix)


def test_healthy_databases_pass_every_check_of_their_engine_in_one_inspection_run(
    pg, my, inspected_postgresql, inspected_mariadb
):
    inspected_postgresql.execute("SELECT pg_stat_statements_reset()")
    inspected_mariadb.execute("TRUNCATE TABLE performance_schema.events_statements_summary_by_digest")
    template = Template.objects.create(slug="databases-test", name="Databases", checks=["db."])

    done = inspect(template)

    outcomes = Outcome.objects.filter(run=done)
    assert sorted(outcomes.filter(target="database:orders").values_list("check_id", flat=True)) == PG_CHECKS
    assert sorted(outcomes.filter(target="database:ledger").values_list("check_id", flat=True)) == MY_CHECKS
    reasons = [render(o.reason) for o in outcomes.exclude(status=PASSED)]
    assert set(outcomes.values_list("status", flat=True)) == {PASSED}, reasons
    assert done.scores == {"databases": 100} and done.status == Run.Status.FINISHED
    pg.refresh_from_db()
    my.refresh_from_db()
    assert pg.server_version.startswith("15.") and pg.last_error == "" and pg.last_seen_at is not None
    assert "MariaDB" in my.server_version


def test_a_database_that_does_not_answer_fails_reachable_and_leaves_the_other_checks_not_checked(db):
    port = free_port()
    gone = DatabaseTarget.objects.create(
        name="gone", engine="postgresql", host="127.0.0.1", port=port, database="bank", username="kubemate_ro",
        password_encrypted=crypto.encrypt("not-used"),
    )  # fmt: skip
    sentence = (
        f"Database gone at 127.0.0.1:{port} refused the connection: check that the server runs and listens on that "
        "address and port."
    )
    [finding] = failing("db.reachable", gone)
    assert (finding.subject, render(finding.message)) == ("gone", sentence)
    assert finding.facts == {"engine": "postgresql", "address": f"127.0.0.1:{port}", "database": "bank"}

    done = inspect(Template.objects.create(slug="databases-down", name="Databases", checks=["db."]))
    assert statuses(done) == {**dict.fromkeys(PG_CHECKS, NOT_CHECKED), "db.reachable": FAILED}
    reasons = {render(r) for r in Outcome.objects.filter(run=done, status=NOT_CHECKED).values_list("reason", flat=True)}
    assert reasons == {sentence}
    gone.refresh_from_db()
    assert render(gone.last_error) == sentence


# Statements --------------------------------------------------------------------------------------------------------


def test_postgresql_slow_statements_are_found_in_pg_stat_statements(pg, inspected_postgresql):
    inspected_postgresql.execute("SELECT pg_stat_statements_reset()")
    passes("db.postgresql.slow_statements", pg, {"db.slow_statement_ms": 200})

    with inspected_postgresql.connect(user=APP) as app:
        for _ in range(3):
            app.execute("SELECT pg_sleep(%s)", (0.3,))

    [finding] = failing("db.postgresql.slow_statements", pg, {"db.slow_statement_ms": 200})
    assert finding.facts["calls"] == 3 and 300 <= finding.facts["mean_ms"] < 1000
    assert finding.subject == f"SELECT pg_sleep($1) ({finding.facts['id']})"
    assert finding.facts["id"].startswith("queryid ")
    mean = round(finding.facts["mean_ms"], 1)
    assert render(finding.message) == (
        f"Statement SELECT pg_sleep($1) takes {mean:g} ms on average over 3 calls (limit 200 ms)."
    )
    passes("db.postgresql.slow_statements", pg)  # the default limit: 1000 ms


def test_postgresql_slow_statements_without_the_extension_are_not_checked_with_how_to_enable_it(
    db, inspected_postgresql
):
    plain = databases.register_database(actor=None, name="plain", **inspected_postgresql.target(database="plain"))
    assert not_checked("db.postgresql.slow_statements", plain) == (
        "pg_stat_statements is not installed in database plain of plain, so PostgreSQL does not record statement "
        "times. Add pg_stat_statements to shared_preload_libraries in postgresql.conf, restart PostgreSQL, then "
        "run CREATE EXTENSION pg_stat_statements; in that database."
    )


def test_mysql_slow_statements_are_found_in_performance_schema_digests(my, inspected_mariadb):
    inspected_mariadb.execute("TRUNCATE TABLE performance_schema.events_statements_summary_by_digest")
    passes("db.mysql.slow_statements", my, {"db.slow_statement_ms": 200})

    with inspected_mariadb.connect() as app, app.cursor() as cursor:
        for _ in range(3):
            cursor.execute("SELECT SLEEP(0.3)")

    [finding] = failing("db.mysql.slow_statements", my, {"db.slow_statement_ms": 200})
    assert finding.facts["calls"] == 3 and 300 <= finding.facts["mean_ms"] < 1000
    assert finding.facts["statement"] == "SELECT `SLEEP` (?)"
    assert finding.subject == f"SELECT `SLEEP` (?) ({finding.facts['id']})" and finding.facts["id"].startswith(
        "digest "
    )
    mean = round(finding.facts["mean_ms"], 1)
    assert render(finding.message) == (
        f"Statement SELECT `SLEEP` (?) takes {mean:g} ms on average over 3 calls (limit 200 ms)."
    )
    passes("db.mysql.slow_statements", my)


def test_mysql_statements_need_performance_schema_and_the_grant_to_read_it(db, inspected_mariadb, mariadb_replica):
    minimal = databases.register_database(actor=None, name="minimal", **inspected_mariadb.target(username=MINIMAL))
    assert not_checked("db.mysql.slow_statements", minimal) == (
        "User kubemate_min may not read what this check reads on database minimal: SELECT command denied to user "
        "'kubemate_min'@'127.0.0.1' for table `performance_schema`.`setup_consumers`. Grant the read-only account "
        "pg_monitor (PostgreSQL), or PROCESS, SLAVE MONITOR (REPLICATION CLIENT on MySQL) and SELECT on "
        "performance_schema (MySQL / MariaDB)."
    )
    # The replica runs without performance_schema.
    replica = databases.register_database(actor=None, name="replica", **mariadb_replica.target(database="replicated"))
    assert not_checked("db.mysql.slow_statements", replica) == (
        "performance_schema is off on database replica, so the server does not record statement times. Set "
        "performance_schema=ON in the server's configuration and restart it."
    )


# Tables ------------------------------------------------------------------------------------------------------------


def test_postgresql_largest_tables_above_the_size_limit_are_found_with_their_sizes(pg, inspected_postgresql):
    name = table_name()
    with inspected_postgresql.connect(user=APP) as app:
        rows = "SELECT g AS id, repeat('x', 200) AS memo FROM generate_series(1, 20000) g"
        app.execute(f"CREATE TABLE {name} AS {rows}")
        app.execute(f"ANALYZE {name}")
        size = app.execute(f"SELECT pg_total_relation_size('{name}')").fetchone()[0]
    try:
        passes("db.postgresql.largest_tables", pg)  # the default limit: 10 GiB
        found = {f.subject: f for f in failing("db.postgresql.largest_tables", pg, {"db.table_size_mb": 1})}
        finding = found[f"public.{name}"]
        assert finding.facts["bytes"] == size and finding.facts["rows"] == 20000 and size > 4 * 2**20
        assert render(finding.message) == (
            f"Table public.{name} takes {round(size / 2**20, 1):g} MiB, indexes included (about 20000 rows; "
            "limit 1 MiB)."
        )
        assert finding.facts["rank"] == 1 + sum(1 for f in found.values() if f.facts["bytes"] > size)
    finally:
        inspected_postgresql.execute(f"DROP TABLE {name}")


def test_mysql_largest_tables_above_the_size_limit_are_found_with_their_sizes(my, inspected_mariadb):
    name = table_name()
    with inspected_mariadb.connect() as app, app.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {name} (id INT AUTO_INCREMENT PRIMARY KEY, memo VARCHAR(300)) ENGINE=InnoDB")
        cursor.execute(f"INSERT INTO {name} (memo) {mariadb_rows(20000)}")
        cursor.execute(f"ANALYZE TABLE {name}")
    try:
        passes("db.mysql.largest_tables", my)
        found = {f.subject: f for f in failing("db.mysql.largest_tables", my, {"db.table_size_mb": 1})}
        finding = found[f"bank.{name}"]
        size, rows = finding.facts["bytes"], finding.facts["rows"]
        assert size > 4 * 2**20 and 15000 < rows < 25000  # InnoDB's statistics are estimates
        assert render(finding.message) == (
            f"Table bank.{name} takes {round(size / 2**20, 1):g} MiB, indexes included (about {rows} rows; "
            "limit 1 MiB)."
        )
    finally:
        inspected_mariadb.execute(f"DROP TABLE bank.{name}")


def _growth_runs(template: Template, grow, check_id: str, subject: str) -> None:
    first = inspect(template)
    assert statuses(first) == {check_id: PASSED}  # nothing measured before: nothing to compare with
    grow()
    second = inspect(template)
    assert statuses(second) == {check_id: FAILED}
    finding = Finding.objects.get(run=second, check_id=check_id, subject=subject)
    assert finding.change == Finding.Change.NEW and finding.facts["growth_percent"] > 50
    before, after = finding.facts["before_bytes"], finding.facts["bytes"]
    assert after > 2 * before
    assert render(finding.message).startswith(
        f"Table {subject} grew by {round((after - before) / before * 100, 1):g}% since "
    )
    assert render(finding.message).endswith(
        f", from {round(before / 2**20, 1):g} MiB to {round(after / 2**20, 1):g} MiB (limit 50%)."
    )
    third = inspect(template)  # compared with the second run: no growth since
    assert statuses(third) == {check_id: PASSED}
    assert list(Finding.objects.filter(run=third).values_list("subject", "change")) == [(subject, "fixed")]


def test_postgresql_table_growth_is_measured_from_run_to_run(pg, inspected_postgresql):
    name = table_name()
    rows = "SELECT g AS id, repeat('x', 200) AS memo FROM generate_series(1, 8000) g"
    create = f"CREATE TABLE {name} AS {rows}"
    inspected_postgresql.execute(create)
    thresholds = {"db.table_growth_percent": 50, "db.table_growth_min_mb": 1}
    template = Template.objects.create(
        slug="pg-growth", name="Growth", checks=["db.postgresql.table_growth"], thresholds=thresholds
    )
    try:
        _growth_runs(
            template,
            lambda: inspected_postgresql.execute(f"INSERT INTO {name} {rows.replace('8000', '24000')}"),
            "db.postgresql.table_growth",
            f"public.{name}",
        )
    finally:
        inspected_postgresql.execute(f"DROP TABLE {name}")


def test_mysql_table_growth_is_measured_from_run_to_run(my, inspected_mariadb):
    name = table_name()
    inspected_mariadb.execute(f"CREATE TABLE bank.{name} (id INT AUTO_INCREMENT PRIMARY KEY, memo VARCHAR(300))")
    inspected_mariadb.execute(f"INSERT INTO bank.{name} (memo) {mariadb_rows(6000)}")
    inspected_mariadb.execute(f"ANALYZE TABLE bank.{name}")
    thresholds = {"db.table_growth_percent": 50, "db.table_growth_min_mb": 1}
    template = Template.objects.create(
        slug="my-growth", name="Growth", checks=["db.mysql.table_growth"], thresholds=thresholds
    )

    def grow():
        inspected_mariadb.execute(f"INSERT INTO bank.{name} (memo) {mariadb_rows(18000)}")
        inspected_mariadb.execute(f"ANALYZE TABLE bank.{name}")

    try:
        _growth_runs(template, grow, "db.mysql.table_growth", f"bank.{name}")
    finally:
        inspected_mariadb.execute(f"DROP TABLE bank.{name}")


# Connections -------------------------------------------------------------------------------------------------------


def _held_connections_fail(check_id: str, target, connect) -> None:
    limit = {"db.connections_percent": 40}  # of max_connections=30: 12
    passes(check_id, target, limit)
    held = [connect() for _ in range(14)]
    try:
        [finding] = failing(check_id, target, limit)
        used = finding.facts["used"]
        assert finding.subject == target.name and finding.facts["max"] == 30 and 15 <= used < 30
        assert render(finding.message) == (
            f"{used} of the 30 connections of database {target.name} are in use "
            f"({round(used / 30 * 100, 1):g}%, limit 40%)."
        )
        assert finding.severity == ""  # critical from 95% on
    finally:
        for connection in held:
            connection.close()
    wait(lambda: run(check_id, target, limit).status == PASSED, 10, "the held connections to close")


def test_postgresql_connections_against_max_connections(pg, inspected_postgresql):
    _held_connections_fail("db.postgresql.connections", pg, lambda: inspected_postgresql.connect(user=APP))


def test_mysql_connections_against_max_connections(my, inspected_mariadb):
    _held_connections_fail("db.mysql.connections", my, lambda: inspected_mariadb.connect())


# Replication -------------------------------------------------------------------------------------------------------


def test_a_postgresql_server_that_is_neither_primary_nor_standby_passes_replication(pg):
    passes("db.postgresql.replication_lag", pg, {"db.replication_lag_seconds": 0})


def test_postgresql_replication_lag_is_seen_from_the_standby_and_from_the_primary(
    pg, inspected_postgresql, postgresql_standby
):
    standby = databases.register_database(actor=None, name="standby", **postgresql_standby.target())
    limit = {"db.replication_lag_seconds": 1}
    passes("db.postgresql.replication_lag", standby, limit)
    passes("db.postgresql.replication_lag", pg, limit)

    inspected_postgresql.execute("CREATE TABLE IF NOT EXISTS replicated_ticks (at timestamptz DEFAULT now())")
    inspected_postgresql.execute("INSERT INTO replicated_ticks DEFAULT VALUES")
    written = inspected_postgresql.execute("SELECT pg_current_wal_lsn()::text")[0][0]
    replayed = "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn"
    wait(lambda: postgresql_standby.execute(replayed, (written,))[0][0], 10, "the standby to replay the first write")
    postgresql_standby.execute("SELECT pg_wal_replay_pause()")
    try:
        time.sleep(1.2)
        inspected_postgresql.execute("INSERT INTO replicated_ticks DEFAULT VALUES")  # received, not replayed
        time.sleep(1.5)
        [behind] = failing("db.postgresql.replication_lag", standby, limit)
        lag = behind.facts["lag_seconds"]
        assert behind.subject == "standby" and lag > 2.5 and behind.facts["paused"] and behind.facts["streaming"]
        assert render(behind.message) == (
            f"Standby standby replays {lag:g} s behind its primary (limit 1 s). Its replay is paused."
        )
        # The primary learns what the standby replayed from its status messages, sent every second.
        wait(lambda: run("db.postgresql.replication_lag", pg, limit).status == FAILED, 10, "the primary to see it")
        [seen] = failing("db.postgresql.replication_lag", pg, limit)
        assert seen.subject == "walreceiver@127.0.0.1" and seen.facts["state"] == "streaming"
        assert seen.facts["lag_seconds"] >= 1  # over the limit, shown to a tenth: 1.04 s is 1.0
        assert render(seen.message) == (
            f"Standby walreceiver (127.0.0.1) replays {seen.facts['lag_seconds']:g} s behind primary orders "
            "(limit 1 s); its state is streaming."
        )
    finally:
        postgresql_standby.execute("SELECT pg_wal_replay_resume()")
    wait(lambda: run("db.postgresql.replication_lag", standby, limit).status == PASSED, 10, "the standby to replay")
    wait(lambda: run("db.postgresql.replication_lag", pg, limit).status == PASSED, 15, "the primary to see it")

    # Cut off from its primary, the standby receives nothing, lag or not.
    postgresql_standby.execute("ALTER SYSTEM SET primary_conninfo = ''")
    postgresql_standby.execute("SELECT pg_reload_conf()")
    wait(lambda: not postgresql_standby.execute("SELECT count(*) FROM pg_stat_wal_receiver")[0][0], 10, "the cut")
    [cut] = failing("db.postgresql.replication_lag", standby, limit)
    assert render(cut.message) == "Standby standby receives no WAL from its primary (no WAL receiver runs)."
    assert cut.facts["streaming"] is False


def test_postgresql_replication_needs_the_monitoring_role(db, inspected_postgresql):
    minimal = databases.register_database(actor=None, name="minimal", **inspected_postgresql.target(username=MINIMAL))
    sentence = (
        "User kubemate_min of database minimal cannot see the state of other sessions and standbys. Grant it the "
        "monitoring role: GRANT pg_monitor TO kubemate_min;"
    )
    for check_id in (
        "db.postgresql.replication_lag",
        "db.postgresql.long_transactions",
        "db.postgresql.idle_in_transaction",
    ):
        assert not_checked(check_id, minimal) == sentence


def test_mysql_replication_lag_and_stopped_threads_are_findings_of_the_replica(my, inspected_mariadb, mariadb_replica):
    replica = databases.register_database(actor=None, name="replica", **mariadb_replica.target(database="replicated"))
    limit = {"db.replication_lag_seconds": 1}
    passes("db.mysql.replication_lag", my, limit)  # a primary: nothing to replicate from
    passes("db.mysql.replication_lag", replica, limit)
    source = f"127.0.0.1:{inspected_mariadb.port}"

    blocker = mariadb_replica.admin()  # the replica's SQL thread waits for this lock, a real lag
    try:
        blocker.cursor().execute("LOCK TABLES replicated.ticks WRITE")
        inspected_mariadb.execute("INSERT INTO replicated.ticks () VALUES ()")
        wait(lambda: (mariadb_replica.status()["Seconds_Behind_Master"] or 0) >= 2, 10, "the replica to lag")
        [behind] = failing("db.mysql.replication_lag", replica, limit)
        lag = behind.facts["lag_seconds"]
        assert behind.subject == f"replica <- {source}" and lag >= 2
        assert (behind.facts["io_running"], behind.facts["sql_running"]) == ("Yes", "Yes")
        assert render(behind.message) == f"Replica replica applies {lag:g} s behind {source} (limit 1 s)."
    finally:
        blocker.close()  # releases the lock
    wait(lambda: run("db.mysql.replication_lag", replica, limit).status == PASSED, 10, "the replica to catch up")

    mariadb_replica.execute("STOP SLAVE SQL_THREAD")
    try:
        inspected_mariadb.execute("INSERT INTO replicated.ticks () VALUES ()")
        [stopped] = failing("db.mysql.replication_lag", replica, limit)
        assert stopped.facts["sql_running"] == "No" and stopped.facts["lag_seconds"] is None
        assert render(stopped.message) == (
            f"The SQL thread of replica replica is stopped: it applies no changes from {source}."
        )
    finally:
        mariadb_replica.execute("START SLAVE SQL_THREAD")
    wait(lambda: run("db.mysql.replication_lag", replica, limit).status == PASSED, 10, "the SQL thread")

    mariadb_replica.execute("STOP SLAVE IO_THREAD")
    try:
        [cut] = failing("db.mysql.replication_lag", replica, limit)
        assert cut.facts["io_running"] == "No"
        assert render(cut.message) == (f"The IO thread of replica replica is No: it receives no changes from {source}.")
    finally:
        mariadb_replica.execute("START SLAVE IO_THREAD")
    wait(lambda: run("db.mysql.replication_lag", replica, limit).status == PASSED, 10, "the IO thread")


# Transactions --------------------------------------------------------------------------------------------------


def test_postgresql_long_transactions_and_sessions_idle_in_transaction(pg, inspected_postgresql):
    limits = {"db.long_transaction_seconds": 1, "db.idle_in_transaction_seconds": 1}
    passes("db.postgresql.long_transactions", pg, limits)
    passes("db.postgresql.idle_in_transaction", pg, limits)

    busy = inspected_postgresql.connect(user=APP, autocommit=False, application_name="nightly-batch")
    idle = inspected_postgresql.connect(user=APP, autocommit=False, application_name="teller")
    try:
        busy_pid = busy.info.backend_pid
        idle_pid = idle.info.backend_pid
        worker = in_background(lambda: busy.execute("SELECT pg_sleep(4)"))
        idle.execute("SELECT count(*) FROM pg_class")  # and then nothing: idle in transaction
        time.sleep(2)

        [long] = failing("db.postgresql.long_transactions", pg, limits)
        assert long.subject == f"pid {busy_pid} ({APP})" and long.facts["state"] == "active"
        assert render(long.message) == (
            f"Session {busy_pid} of {APP} (nightly-batch from 127.0.0.1) has been in one transaction for "
            f"{long.facts['seconds']:g} s (limit 1 s); it runs: SELECT pg_sleep(4)"
        )
        [forgotten] = failing("db.postgresql.idle_in_transaction", pg, limits)
        assert forgotten.subject == f"pid {idle_pid} ({APP})" and forgotten.facts["seconds"] >= 1.5
        assert render(forgotten.message) == (
            f"Session {idle_pid} of {APP} (teller from 127.0.0.1) has been idle in a transaction for "  # noqa: S608
            f"{forgotten.facts['seconds']:g} s (limit 1 s); its last statement: SELECT count(*) FROM pg_class"
        )
        passes("db.postgresql.idle_in_transaction", pg)  # the default limit: 60 s
        idle.rollback()
        passes("db.postgresql.idle_in_transaction", pg, limits)
        worker.join(10)
        busy.rollback()
        passes("db.postgresql.long_transactions", pg, limits)
    finally:
        busy.close()
        idle.close()


def test_mysql_long_and_forgotten_transactions(my, inspected_mariadb):
    limits = {"db.long_transaction_seconds": 1, "db.idle_in_transaction_seconds": 1}
    name = table_name()
    inspected_mariadb.execute(f"CREATE TABLE bank.{name} (id INT PRIMARY KEY) ENGINE=InnoDB")
    passes("db.mysql.long_transactions", my, limits)

    busy = inspected_mariadb.connect(autocommit=False)
    idle = inspected_mariadb.connect(autocommit=False)
    try:
        busy_thread, idle_thread = busy.thread_id(), idle.thread_id()
        idle.cursor().execute(f"INSERT INTO {name} VALUES (1)")  # noqa: S608 (then nothing: a forgotten transaction)
        cursor = busy.cursor()
        cursor.execute(f"INSERT INTO {name} VALUES (2)")  # noqa: S608 (a name the test makes)
        worker = in_background(lambda: cursor.execute("SELECT SLEEP(4)"))
        time.sleep(2.2)

        found = {f.facts["thread"]: f for f in failing("db.mysql.long_transactions", my, limits)}
        running, forgotten = found[busy_thread], found[idle_thread]
        assert running.subject == f"thread {busy_thread} ({APP})" and not running.facts["idle"]
        assert render(running.message) == (
            f"Thread {busy_thread} of {APP} from {running.facts['host']} (database bank) has been in one transaction "
            f"for {running.facts['seconds']} s (limit 1 s); it runs: SELECT SLEEP(4)"
        )
        assert forgotten.facts["idle"] and forgotten.facts["seconds"] >= 2
        assert render(forgotten.message) == (
            f"Thread {idle_thread} of {APP} from {forgotten.facts['host']} (database bank) has held a transaction "
            f"open for {forgotten.facts['seconds']} s while idle (limit 1 s)."
        )
        passes("db.mysql.long_transactions", my)  # the default limits: 300 s and 60 s
        idle.rollback()
        worker.join(10)
        busy.rollback()
        passes("db.mysql.long_transactions", my, limits)
    finally:
        busy.close()
        idle.close()
        inspected_mariadb.execute(f"DROP TABLE bank.{name}")

    minimal = databases.register_database(actor=None, name="minimal", **inspected_mariadb.target(username=MINIMAL))
    assert not_checked("db.mysql.long_transactions", minimal).startswith(
        "User kubemate_min may not read what this check reads on database minimal: Access denied; you need (at "
        "least one of) the PROCESS privilege(s) for this operation."
    )


def test_a_postgresql_server_refusing_applications_is_a_critical_finding(pg, inspected_postgresql):
    # max_connections 30, of which 3 are kept for superusers: with Kubemate's own session, 27 are taken.
    held = [inspected_postgresql.connect(user=APP) for _ in range(26)]
    try:
        [finding] = failing("db.postgresql.connections", pg)
        assert finding.severity == Severity.CRITICAL
        assert (finding.facts["used"], finding.facts["superuser_reserved"]) == (27, 3)
        assert render(finding.message) == "27 of the 30 connections of database orders are in use (90%, limit 80%)."
    finally:
        for connection in held:
            connection.close()
