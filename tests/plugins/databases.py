"""pytest plugin: a real PostgreSQL and a real MariaDB to inspect, apart from Kubemate's own database.

The session fixtures ``inspected_postgresql`` and ``inspected_mariadb`` each start a project-local server on a free
loopback port, with its data in a temporary folder (PostgreSQL: initdb, then postgres with
``shared_preload_libraries=pg_stat_statements``; MariaDB: mariadb-install-db, then mariadbd with
``performance_schema=ON`` and a binary log), and stop it at the end of the session. As root, PostgreSQL runs as the
postgres user and MariaDB as the mysql user (``--user``), as deploy/local/services runs Kubemate's own PostgreSQL.
Both cap ``max_connections`` at 30, so a test can fill them.

Each server holds a database ``bank`` and accounts:

- ``kubemate_ro``: the read-only account Kubemate is meant to be given (PostgreSQL: ``pg_monitor``; MariaDB:
  SELECT, PROCESS and SLAVE MONITOR);
- ``kubemate_min``: a read-only account without the monitoring grants, for the "may not read" sentences;
- ``bank_app``: the application, which writes (``server.connect(user="bank_app")``);
- the administrator (PostgreSQL ``admin`` over TCP, MariaDB ``root`` over the socket): ``server.admin()``.

PostgreSQL's ``plain`` database has no pg_stat_statements extension. Replication is real too:
``postgresql_standby`` (per test) is a hot standby made with ``pg_basebackup -R`` streaming from
``inspected_postgresql``; ``mariadb_replica`` (per session) is a second mariadbd replicating the ``replicated``
database from ``inspected_mariadb`` (CHANGE MASTER TO the primary's current binary log position). If a server cannot
be installed or does not start, the fixtures raise: tests fail, they are never skipped (``make test`` installs
Debian's postgresql and mariadb-server packages).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pymysql
import pytest

from tests.plugins.served import Served, free_port, wait

PG_BIN = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))[-1])
MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
ROOT = os.geteuid() == 0

READ_ONLY, MINIMAL, APP = "kubemate_ro", "kubemate_min", "bank_app"


def _owned_by(folder: Path, user: str) -> Path:
    """``folder`` made the server's own (servers refuse data folders others may enter)."""
    folder.mkdir(parents=True, exist_ok=True)
    if ROOT:
        shutil.chown(folder, user, user)
    folder.chmod(0o700)
    return folder


def _as(user: str) -> dict:
    """Popen arguments running a command as ``user`` when the tests run as root (PostgreSQL refuses root)."""
    return {"user": user, "group": user, "extra_groups": []} if ROOT else {}


def _run(command: list[str], user: str, log: Path, env: dict | None = None) -> None:
    with log.open("ab") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=120, env=env, **_as(user))
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}): {log.read_text(errors='replace')[-3000:]}")


# PostgreSQL ------------------------------------------------------------------------------------------------------


@dataclass
class InspectedPostgres(Served):
    name = "inspected PostgreSQL"
    log_name = "postgres"

    folder: Path
    port: int
    password: str
    settings: tuple[str, ...] = ()
    process: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def command(self) -> list[str]:
        settings = [
            "listen_addresses=127.0.0.1",
            f"unix_socket_directories={self.folder}",
            "shared_preload_libraries=pg_stat_statements",
            "max_connections=30",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            # A standby reports what it replayed every second, so the primary's replay_lag moves while a test looks.
            "wal_receiver_status_interval=1s",
            *self.settings,
        ]
        return [str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port)] + [
            arg for s in settings for arg in ("-c", s)
        ]

    def connect(self, dbname: str = "bank", user: str = "admin", **options) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            dbname=dbname,
            user=user,
            password=self.password,
            **{"autocommit": True, "connect_timeout": 5, **options},
        )

    def admin(self, dbname: str = "bank") -> psycopg.Connection:
        return self.connect(dbname)

    def execute(self, sql: str, params=None, dbname: str = "bank"):
        with self.admin(dbname) as connection:
            cursor = connection.execute(sql, params)
            return cursor.fetchall() if cursor.description else None

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.log()}")
        try:
            self.connect("postgres", connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        self._log = (self.folder / f"{self.log_name}.log").open("ab")
        self.process = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT, **_as("postgres"))
        wait(self._ready, 60, f"{self.name} on port {self.port}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)  # fast shutdown: SIGTERM would wait for every client to leave
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
        self._log.close()

    def target(self, **changes) -> dict:
        """What a person types to register ``bank`` with the read-only account."""
        return {
            "engine": "postgresql",
            "host": "127.0.0.1",
            "port": self.port,
            "database": "bank",
            "username": READ_ONLY,
            "password": self.password,
            **changes,
        }


def _initdb(folder: Path, password: str) -> None:
    (folder / "password").write_text(password + "\n")
    if ROOT:
        shutil.chown(folder / "password", "postgres", "postgres")
    command = [
        str(PG_BIN / "initdb"),
        "-D",
        str(folder / "data"),
        "-U",
        "admin",
        f"--pwfile={folder / 'password'}",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
        "--no-sync",
    ]
    _run(command, "postgres", folder / "initdb.log")
    (folder / "password").unlink()


POSTGRES_SETUP = [
    "CREATE DATABASE bank",
    "CREATE DATABASE plain",
    f"CREATE ROLE {READ_ONLY} LOGIN PASSWORD %(password)s",
    f"GRANT pg_monitor TO {READ_ONLY}",
    f"CREATE ROLE {MINIMAL} LOGIN PASSWORD %(password)s",
    f"CREATE ROLE {APP} LOGIN PASSWORD %(password)s",
    f"ALTER DATABASE bank OWNER TO {APP}",
]


@pytest.fixture(scope="session")
def inspected_postgresql():
    """A project-local PostgreSQL (not Kubemate's own) with pg_stat_statements, ``bank`` and the accounts above."""
    folder = _owned_by(Path(tempfile.mkdtemp(prefix="kubemate-inspected-pg-")), "postgres")
    server = InspectedPostgres(folder=folder, port=free_port(), password=secrets.token_urlsafe(16))
    _initdb(folder, server.password)
    try:
        server.start()
        with server.admin("postgres") as admin:
            for statement in POSTGRES_SETUP:
                admin.execute(statement.replace("%(password)s", "'" + server.password + "'"))
        server.execute("CREATE EXTENSION pg_stat_statements")
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgresql_standby(inspected_postgresql):
    """A hot standby streaming from ``inspected_postgresql`` (pg_basebackup -R), stopped after the test."""
    primary = inspected_postgresql
    folder = _owned_by(Path(tempfile.mkdtemp(prefix="kubemate-inspected-standby-")), "postgres")
    env = {**os.environ, "PGPASSWORD": primary.password}
    command = [
        str(PG_BIN / "pg_basebackup"),
        "-h",
        "127.0.0.1",
        "-p",
        str(primary.port),
        "-U",
        "admin",
        "-D",
        str(folder / "data"),
        "-R",
        "-X",
        "stream",
        "-c",
        "fast",
        "--no-sync",
    ]
    _run(command, "postgres", folder / "basebackup.log", env=env)
    standby = InspectedPostgres(
        folder=folder, port=free_port(), password=primary.password, settings=("hot_standby=on",)
    )
    try:
        standby.start()
        wait(
            lambda: primary.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")[0][0],
            30,
            "the standby to stream",
        )
        yield standby
    finally:
        standby.stop()
        shutil.rmtree(folder, ignore_errors=True)
        wait(lambda: not primary.execute("SELECT count(*) FROM pg_stat_replication")[0][0], 30, "the standby to go")


# MariaDB ---------------------------------------------------------------------------------------------------------


@dataclass
class InspectedMariaDB(Served):
    name = "inspected MariaDB"
    log_name = "mariadb"
    stop_timeout = 30

    folder: Path
    port: int
    password: str
    server_id: int = 1
    options: tuple[str, ...] = ()
    process: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)

    @property
    def socket(self) -> Path:
        return self.folder / "mysqld.sock"

    def command(self) -> list[str]:
        return [
            MARIADBD,
            "--no-defaults",
            f"--datadir={self.folder / 'data'}",
            f"--socket={self.socket}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            f"--server-id={self.server_id}",
            f"--pid-file={self.folder / 'mysqld.pid'}",
            "--max-connections=30",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
            "--innodb-flush-log-at-trx-commit=0",
            "--skip-innodb-doublewrite",
            "--performance-schema=ON",
            *(["--user=mysql"] if ROOT else []),
            *self.options,
        ]

    def admin(self) -> pymysql.Connection:
        return pymysql.connect(unix_socket=str(self.socket), user="root", autocommit=True, connect_timeout=5)

    def connect(self, user: str = APP, database: str = "bank", **options) -> pymysql.Connection:
        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user=user,
            password=self.password,
            database=database,
            **{"autocommit": True, "connect_timeout": 5, **options},
        )

    def execute(self, sql: str, params=None) -> tuple:
        with self.admin() as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.log()}")
        try:
            self.admin().close()
        except pymysql.MySQLError:
            return False
        return True

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        self._log = (self.folder / f"{self.log_name}.log").open("ab")
        # mariadbd drops to the mysql user itself (--user): started as root, as its own init scripts do.
        self.process = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT)
        wait(self._ready, 60, f"{self.name} on port {self.port}")

    def status(self) -> dict:
        """This server's SHOW SLAVE STATUS row ({} when it replicates nothing)."""
        with self.admin() as admin, admin.cursor(pymysql.cursors.DictCursor) as cursor:
            cursor.execute("SHOW SLAVE STATUS")
            return cursor.fetchone() or {}

    def target(self, **changes) -> dict:
        return {
            "engine": "mysql",
            "host": "127.0.0.1",
            "port": self.port,
            "database": "bank",
            "username": READ_ONLY,
            "password": self.password,
            **changes,
        }


def _mariadb(prefix: str, server_id: int, password: str, options: tuple[str, ...]) -> InspectedMariaDB:
    folder = _owned_by(Path(tempfile.mkdtemp(prefix=prefix)), "mysql")
    command = [
        INSTALL_DB,
        "--no-defaults",
        f"--datadir={folder / 'data'}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        "--skip-name-resolve",
        *(["--user=mysql"] if ROOT else []),
    ]
    with (folder / "install.log").open("ab") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"mariadb-install-db failed: {(folder / 'install.log').read_text(errors='replace')[-3000:]}")
    server = InspectedMariaDB(folder=folder, port=free_port(), password=password, server_id=server_id, options=options)
    try:
        server.start()
    except BaseException:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return server


def _mariadb_accounts(server: InspectedMariaDB) -> None:
    password = server.password
    for statement in (
        "CREATE DATABASE IF NOT EXISTS bank",
        f"CREATE USER '{READ_ONLY}'@'%' IDENTIFIED BY '{password}'",
        f"GRANT SELECT, PROCESS, SLAVE MONITOR ON *.* TO '{READ_ONLY}'@'%'",
        f"CREATE USER '{MINIMAL}'@'%' IDENTIFIED BY '{password}'",
        f"GRANT SELECT ON bank.* TO '{MINIMAL}'@'%'",
        f"CREATE USER '{APP}'@'%' IDENTIFIED BY '{password}'",
        f"GRANT ALL ON bank.* TO '{APP}'@'%'",
        f"GRANT ALL ON replicated.* TO '{APP}'@'%'",
    ):
        server.execute(statement)


@pytest.fixture(scope="session")
def inspected_mariadb():
    """A project-local MariaDB with performance_schema, a binary log, ``bank`` and the accounts above."""
    server = _mariadb(
        "kubemate-inspected-mariadb-", 1, secrets.token_urlsafe(16), ("--log-bin=binlog", "--binlog-format=ROW")
    )
    try:
        _mariadb_accounts(server)
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def mariadb_replica(inspected_mariadb):
    """A second mariadbd replicating the ``replicated`` database of ``inspected_mariadb`` from its current binary
    log position (what the primary did before is not replayed), with the same accounts."""
    primary = inspected_mariadb
    replica = _mariadb(
        "kubemate-inspected-replica-",
        2,
        primary.password,
        ("--replicate-wild-do-table=replicated.%", "--performance-schema=OFF"),
    )
    try:
        _mariadb_accounts(replica)
        replication_password = secrets.token_urlsafe(16)
        with primary.admin() as admin, admin.cursor() as cursor:
            # Made on both sides before replication starts, without logging it: the replica applies only what
            # happens in ``replicated`` from now on.
            cursor.execute("SET SESSION sql_log_bin = 0")
            cursor.execute("CREATE DATABASE IF NOT EXISTS replicated")
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS replicated.ticks (id INT AUTO_INCREMENT PRIMARY KEY, "
                "at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB"
            )
            cursor.execute("CREATE USER IF NOT EXISTS 'replicator'@'%%' IDENTIFIED BY %s", (replication_password,))
            cursor.execute("GRANT REPLICATION SLAVE ON *.* TO 'replicator'@'%'")
            cursor.execute("SET SESSION sql_log_bin = 1")
            cursor.execute("SHOW MASTER STATUS")
            log_file, position = cursor.fetchone()[:2]
        with replica.admin() as admin, admin.cursor() as cursor:
            cursor.execute("CREATE DATABASE IF NOT EXISTS replicated")
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS replicated.ticks (id INT AUTO_INCREMENT PRIMARY KEY, "
                "at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB"
            )
            cursor.execute(
                "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = %s, MASTER_USER = 'replicator', "
                "MASTER_PASSWORD = %s, MASTER_LOG_FILE = %s, MASTER_LOG_POS = %s, MASTER_CONNECT_RETRY = 1, "
                "MASTER_HEARTBEAT_PERIOD = 1, MASTER_USE_GTID = no",
                (primary.port, replication_password, log_file, position),
            )
            cursor.execute("START SLAVE")
        wait(lambda: replica.status()["Slave_IO_Running"] == "Yes", 30, "the replica to connect")
        yield replica
    finally:
        replica.stop()
        shutil.rmtree(replica.folder, ignore_errors=True)
