"""The one door to inspected databases (PostgreSQL through psycopg 3, MySQL and MariaDB through PyMySQL).

Every connection is opened here, with the same promises whatever the engine:

- a connect timeout (``CONNECT_SECONDS``) and a per-statement timeout (``STATEMENT_SECONDS``): PostgreSQL's
  ``statement_timeout``; MySQL's ``max_execution_time`` or MariaDB's ``max_statement_time``, with the driver's read
  timeout as a backstop for the statements those do not cover (SHOW);
- a read-only session on top of the read-only account Kubemate is meant to be given (PostgreSQL:
  ``default_transaction_read_only``; MySQL: ``SET SESSION TRANSACTION READ ONLY``), in autocommit so Kubemate never
  sits "idle in transaction" itself;
- bounded answers: the checks' statements carry their own LIMIT, ``Session.rows`` reads at most ``limit`` rows,
  and long texts (statements) are cut by the server before they are sent;
- every failure is a ``DatabaseError`` whose message is a deferred sentence: the server refused the connection,
  did not answer in time, refused the user or password, has no such database, or the account may not read what a
  check reads (a missing grant, a missing extension). The password is never part of a sentence, a log line or an
  audit detail.

TLS (``use_tls``) encrypts the connection (PostgreSQL ``sslmode=require``); the server's certificate is not
verified, because no CA is stored with a database target yet.

Registering, changing and removing databases are services here too (one transaction, one audit event each),
because each of them tests the connection through this door first: nothing is stored for a database that does not
answer. The password is stored encrypted (``core.crypto``) and never shown again.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.clusters.registry.services import HOST_NAME, address_problem
from apps.clusters.values import is_dns_label
from apps.core import audit, crypto
from apps.core.deferred import N_, Failure, fit
from apps.core.deferred import text as D
from apps.core.models import AuditEvent
from apps.inspection import access
from apps.inspection.models import DatabaseTarget

if TYPE_CHECKING:  # PyMySQL is imported when a MySQL or MariaDB target is asked, not with the module
    import pymysql

logger = logging.getLogger(__name__)

CONNECT_SECONDS = 5
STATEMENT_SECONDS = 10
MAX_ROWS = 200
MAX_PASSWORD = 512
NAME = re.compile(r"^[-a-zA-Z0-9_]{1,63}$")
POSTGRESQL, MYSQL = DatabaseTarget.Engine.POSTGRESQL, DatabaseTarget.Engine.MYSQL
UNCHANGED = object()
# Fields whose change is tested against the server before it is stored.
CONNECTION_FIELDS = ("engine", "host", "port", "database", "username", "use_tls")

# MySQL / MariaDB error codes (mysqld_error.h, errmsg.h) and what they mean for the person reading the sentence.
MY_TIMEOUT = {1969, 3024}  # MariaDB max_statement_time, MySQL max_execution_time
MY_DENIED = {1044, 1142, 1143, 1227, 1370}
MY_MISSING = {1049, 1054, 1109, 1146}
MY_LOST = {2006, 2013, 2055}
MY_HOST_NOT_ALLOWED = {1130}
MY_TOO_MANY = {1040, 1203}


class DatabaseError(Failure):
    """The database gave no usable answer; the message is the sentence to show, ``stored`` the one to keep."""


class Unreachable(DatabaseError):
    """No connection: refused, timed out, name unknown, TLS refused, no connection free."""


class LoginRefused(DatabaseError):
    """The server answered and refused the user, the password, the client's address or the database name."""


class QueryFailed(DatabaseError):
    """A statement did not answer: too slow, not permitted, an object (view, extension) missing, connection lost."""


class Refused(DatabaseError):
    """A registration or change that cannot be made, with the reason."""


@dataclass(frozen=True)
class Address:
    """Where and as whom Kubemate connects (everything but the password)."""

    name: str
    engine: str
    host: str
    port: int
    database: str
    username: str
    use_tls: bool = False

    @property
    def where(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def words(self) -> dict:
        return {"name": self.name, "address": self.where}


def address_of(target: DatabaseTarget) -> Address:
    return Address(
        target.name, target.engine, target.host, target.port, target.database, target.username, target.use_tls
    )


# Errors as sentences -------------------------------------------------------------------------------------------


def _server_words(text: str) -> str:
    """The server's own words from a driver message, without libpq's "connection to server at ... failed:" and
    the statement echoed after "LINE 1:"."""
    text = text.split("\nLINE ", 1)[0]
    text = re.sub(r"^connection failed: ", "", text.strip())
    text = re.sub(r'^connection to server at "[^"]*"(?: \([^)]*\))?, port \d+ failed: ', "", text)
    text = re.sub(r"^(FATAL|ERROR):\s+", "", text)
    return " ".join(text.split())[:200]


def _timed_out(address: Address) -> Unreachable:
    sentence = N_("Database %(name)s at %(address)s did not answer within %(seconds)s seconds.")
    return Unreachable(D(sentence, seconds=CONNECT_SECONDS, **address.words()))


def _refused(address: Address) -> Unreachable:
    sentence = N_(
        "Database %(name)s at %(address)s refused the connection: check that the server runs and listens on that "
        "address and port."
    )
    return Unreachable(D(sentence, **address.words()))


def _no_name(address: Address) -> Unreachable:
    return Unreachable(
        D(N_("The host name of database %(name)s (%(host)s) does not resolve."), name=address.name, host=address.host)
    )


def _bad_login(address: Address) -> LoginRefused:
    sentence = N_(
        "Database %(name)s at %(address)s refused user %(user)s: the user does not exist or the password is wrong."
    )
    return LoginRefused(D(sentence, user=address.username, **address.words()))


def _not_allowed_from_here(address: Address, error: str) -> LoginRefused:
    sentence = N_(
        "Database %(name)s at %(address)s does not let user %(user)s connect from Kubemate's address "
        "(pg_hba.conf, or the host part of a MySQL account): %(error)s"
    )
    return LoginRefused(D(sentence, user=address.username, error=error, **address.words()))


def _no_database(address: Address) -> LoginRefused:
    sentence = N_("The server of database %(name)s at %(address)s has no database named %(database)s.")
    return LoginRefused(D(sentence, database=address.database, **address.words()))


def _full(address: Address) -> Unreachable:
    sentence = N_(
        "Database %(name)s at %(address)s has no connection free (max_connections is reached): find who holds the "
        "connections, or raise the limit."
    )
    return Unreachable(D(sentence, **address.words()))


def _tls_failed(address: Address, error: str) -> Unreachable:
    sentence = N_("Database %(name)s at %(address)s could not be reached over TLS: %(error)s")
    return Unreachable(D(sentence, error=error, **address.words()))


def _unreachable(address: Address, error: str) -> Unreachable:
    sentence = N_("Database %(name)s at %(address)s could not be reached: %(error)s")
    return Unreachable(D(sentence, error=error or "?", **address.words()))


def _postgresql_connect_error(address: Address, exc: psycopg.Error) -> DatabaseError:
    words = _server_words(str(exc))
    lower = words.lower()
    if isinstance(exc, psycopg.errors.ConnectionTimeout) or "timeout expired" in lower:
        return _timed_out(address)
    if "failed to resolve host" in lower or "could not translate host name" in lower:
        return _no_name(address)
    if "connection refused" in lower:
        return _refused(address)
    if "password authentication failed" in lower or ("role" in lower and "does not exist" in lower):
        return _bad_login(address)
    if "no pg_hba.conf entry" in lower:
        return _not_allowed_from_here(address, words)
    if "database" in lower and "does not exist" in lower:
        return _no_database(address)
    if "too many clients" in lower or "connection slots are reserved" in lower:
        return _full(address)
    if "ssl" in lower:
        return _tls_failed(address, words)
    return _unreachable(address, words)


def _mysql_connect_error(address: Address, exc: pymysql.MySQLError) -> DatabaseError:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
    words = " ".join(str(exc.args[1] if len(exc.args) > 1 else exc).split())[:200]
    cause = getattr(exc, "original_exception", None) or exc.__cause__ or exc.__context__
    if isinstance(cause, socket.gaierror):
        return _no_name(address)
    if isinstance(cause, TimeoutError | socket.timeout):
        return _timed_out(address)
    if isinstance(cause, ConnectionRefusedError):
        return _refused(address)
    if isinstance(cause, ssl.SSLError):
        return _tls_failed(address, str(cause.reason or cause)[:200])
    if code == 2026:  # CR_SSL_CONNECTION_ERROR: TLS required, and the server offers none or the handshake failed
        return _tls_failed(address, words)
    if code == 1045:
        return _bad_login(address)
    if code in MY_HOST_NOT_ALLOWED:
        return _not_allowed_from_here(address, words)
    if code == 1049:
        return _no_database(address)
    if code == 1044:
        sentence = N_("Database %(name)s at %(address)s does not let user %(user)s use database %(database)s.")
        return LoginRefused(D(sentence, user=address.username, database=address.database, **address.words()))
    if code in MY_TOO_MANY:
        return _full(address)
    return _unreachable(address, words)


def _query_timed_out(address: Address) -> QueryFailed:
    sentence = N_(
        "A statement Kubemate sent to database %(name)s did not finish within %(seconds)s seconds and was cancelled."
    )
    return QueryFailed(D(sentence, seconds=STATEMENT_SECONDS, name=address.name))


def _denied(address: Address, error: str) -> QueryFailed:
    sentence = N_(
        "User %(user)s may not read what this check reads on database %(name)s: %(error)s. Grant the read-only "
        "account pg_monitor (PostgreSQL), or PROCESS, SLAVE MONITOR (REPLICATION CLIENT on MySQL) and SELECT on "
        "performance_schema (MySQL / MariaDB)."
    )
    return QueryFailed(D(sentence, user=address.username, name=address.name, error=error))


def _missing(address: Address, error: str) -> QueryFailed:
    sentence = N_("Database %(name)s lacks what this check reads: %(error)s")
    return QueryFailed(D(sentence, name=address.name, error=error))


def _lost(address: Address, error: str) -> QueryFailed:
    sentence = N_("The connection to database %(name)s was lost: %(error)s")
    return QueryFailed(D(sentence, name=address.name, error=error))


def _query_error(address: Address, error: str, code: str) -> QueryFailed:
    sentence = N_("Database %(name)s answered a statement of Kubemate's with error %(code)s: %(error)s")
    return QueryFailed(D(sentence, name=address.name, code=code, error=error))


def _postgresql_query_error(address: Address, exc: psycopg.Error) -> QueryFailed:
    words = _server_words(str(exc))
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return _query_timed_out(address)
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return _denied(address, words)
    if isinstance(
        exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedFunction | psycopg.errors.UndefinedObject
    ):
        return _missing(address, words)
    if exc.sqlstate is None or isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return _lost(address, words)
    return _query_error(address, words, exc.sqlstate)


def _mysql_query_error(address: Address, exc: pymysql.MySQLError) -> QueryFailed:
    import pymysql

    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
    words = " ".join(str(exc.args[1] if len(exc.args) > 1 else exc).split())[:200]
    if code in MY_TIMEOUT or (code in MY_LOST and "timed out" in words):
        return _query_timed_out(address)
    if code in MY_DENIED:
        return _denied(address, words)
    if code in MY_MISSING:
        return _missing(address, words)
    if code in MY_LOST or isinstance(exc, pymysql.err.InterfaceError):
        return _lost(address, words or type(exc).__name__)
    return _query_error(address, words, str(code))


# Sessions ------------------------------------------------------------------------------------------------------


class Session:
    """An open read-only connection. ``rows`` and ``named`` read at most ``limit`` rows; a failing statement raises
    QueryFailed with its sentence."""

    def __init__(self, address: Address, connection, version: str) -> None:
        self.address = address
        self.engine = address.engine
        self.version = version
        self.mariadb = "mariadb" in version.lower()
        self._connection = connection

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _run(self, sql: str, params, limit: int) -> tuple[list[str], list[tuple]]:
        if self.engine == POSTGRESQL:
            mysql_error = ()  # a psycopg connection raises no PyMySQL error: PyMySQL stays unimported for it
        else:
            import pymysql

            mysql_error = pymysql.MySQLError
        try:
            cursor = self._connection.cursor()
            try:
                cursor.execute(sql, params or None)
                if cursor.description is None:
                    return [], []
                names = [column[0] for column in cursor.description]
                return names, list(cursor.fetchmany(limit))
            finally:
                cursor.close()
        except psycopg.Error as exc:
            raise _postgresql_query_error(self.address, exc) from None
        except mysql_error as exc:
            raise _mysql_query_error(self.address, exc) from None
        except (OSError, TimeoutError) as exc:  # PyMySQL's read timeout surfaces as a socket error in some paths
            raise _lost(self.address, type(exc).__name__) from None

    def rows(self, sql: str, params=(), *, limit: int = MAX_ROWS) -> list[tuple]:
        return self._run(sql, params, limit)[1]

    def named(self, sql: str, params=(), *, limit: int = MAX_ROWS) -> list[dict]:
        """Rows as dicts by column name (for SHOW statements whose columns differ from version to version)."""
        names, rows = self._run(sql, params, limit)
        return [dict(zip(names, row, strict=True)) for row in rows]

    def one(self, sql: str, params=()) -> tuple | None:
        rows = self.rows(sql, params, limit=1)
        return rows[0] if rows else None

    def value(self, sql: str, params=()):
        row = self.one(sql, params)
        return row[0] if row else None

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 (a connection that will not close cleanly is gone all the same)
                logger.debug("closing a database connection failed", extra={"database": self.address.name})


def _open_postgresql(address: Address, password: str) -> Session:
    options = (
        f"-c default_transaction_read_only=on -c statement_timeout={STATEMENT_SECONDS * 1000} "
        f"-c lock_timeout={STATEMENT_SECONDS * 1000} -c idle_in_transaction_session_timeout=60000"
    )
    try:
        connection = psycopg.connect(
            host=address.host,
            port=address.port,
            dbname=address.database,
            user=address.username,
            password=password,
            connect_timeout=max(2, CONNECT_SECONDS),
            sslmode="require" if address.use_tls else "prefer",
            gssencmode="disable",
            application_name="kubemate-inspection",
            options=options,
            autocommit=True,
        )
    except psycopg.Error as exc:
        raise _postgresql_connect_error(address, exc) from None
    session = Session(address, connection, "")
    try:
        session.version = str(session.value("SELECT current_setting('server_version')") or "")[:64]
    except DatabaseError:
        session.close()
        raise
    return session


def _tls_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # no CA is stored with a target yet: encrypted, not authenticated
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _open_mysql(address: Address, password: str) -> Session:
    import pymysql

    try:
        connection = pymysql.connect(
            host=address.host,
            port=address.port,
            database=address.database,
            user=address.username,
            password=password,
            connect_timeout=CONNECT_SECONDS,
            # The server's greeting and the login wait as long as the connection may: a port that accepts and never
            # answers "did not answer within CONNECT_SECONDS" (PyMySQL's connect_timeout covers the TCP connect only).
            read_timeout=CONNECT_SECONDS,
            write_timeout=CONNECT_SECONDS,
            ssl=_tls_context() if address.use_tls else None,
            charset="utf8mb4",
            autocommit=True,
            local_infile=False,
            program_name="kubemate-inspection",
        )
    except pymysql.MySQLError as exc:
        raise _mysql_connect_error(address, exc) from None
    except (OSError, TimeoutError) as exc:
        raise _unreachable(address, type(exc).__name__) from None
    # Statements then get their own bound (the server cancels them at STATEMENT_SECONDS); PyMySQL has no public
    # setter for the socket timeouts of an open connection.
    connection._read_timeout = connection._write_timeout = STATEMENT_SECONDS + 5
    session = Session(address, connection, "")
    try:
        session.version = str(session.value("SELECT VERSION()") or "")[:64]
        session.mariadb = "mariadb" in session.version.lower()
        if session.mariadb:
            session.rows(f"SET SESSION max_statement_time = {STATEMENT_SECONDS}")
        else:
            session.rows(f"SET SESSION max_execution_time = {STATEMENT_SECONDS * 1000}")
        session.rows("SET SESSION TRANSACTION READ ONLY")
    except DatabaseError:
        session.close()
        raise
    return session


def open_session(address: Address, password: str) -> Session:
    """A read-only session on the database at ``address``; DatabaseError with the reason otherwise."""
    if address.engine == POSTGRESQL:
        return _open_postgresql(address, password)
    if address.engine == MYSQL:
        return _open_mysql(address, password)
    raise Refused(D(N_("Kubemate cannot inspect databases of engine %(engine)s."), engine=address.engine))


def password_of(target: DatabaseTarget) -> str:
    if not target.password_encrypted:
        return ""
    try:
        return crypto.decrypt(target.password_encrypted)
    except crypto.DecryptionFailed:
        sentence = N_(
            "The stored password of database %(name)s cannot be decrypted with the configured keys; give the "
            "password again."
        )
        raise DatabaseError(D(sentence, name=target.name)) from None


def connect(target: DatabaseTarget) -> Session:
    """A read-only session on ``target``. Keeps on the row when it last answered, its server version, or the
    sentence saying why it did not."""
    try:
        session = open_session(address_of(target), password_of(target))
    except DatabaseError as exc:
        target.last_error = fit(exc.stored, 500)
        DatabaseTarget.objects.filter(pk=target.pk).update(last_error=target.last_error)
        raise
    target.last_seen_at, target.last_error, target.server_version = timezone.now(), "", session.version
    DatabaseTarget.objects.filter(pk=target.pk).update(
        last_seen_at=target.last_seen_at, last_error="", server_version=target.server_version
    )
    return session


# Registering, changing, removing ------------------------------------------------------------------------------


def _allowed(actor) -> None:
    if actor is not None and not access.may_manage_targets(actor):
        raise Refused(D(N_("You may not register or change databases to inspect.")))


def _taken(name: str, exclude: int | None = None) -> Refused | None:
    if DatabaseTarget.objects.filter(name=name).exclude(pk=exclude).exists():
        return Refused(D(N_("A database named %(name)s is already registered."), name=name))
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _plain(value: str, limit: int) -> bool:
    return 0 < len(value) <= limit and value.isprintable() and value.strip() == value


def checked(values: dict) -> dict:
    """``values`` (name, engine, host, port, database, username, password, namespace, cluster) when Kubemate may
    connect with them; Refused with the first problem otherwise. Nothing is sent anywhere."""
    if not NAME.match(values["name"]):
        raise Refused(D(N_("The name must be 1 to 63 letters, digits, '-' or '_'.")))
    if values["engine"] not in DatabaseTarget.Engine.values:
        raise Refused(D(N_("Kubemate cannot inspect databases of engine %(engine)s."), engine=values["engine"]))
    host = values["host"].strip().strip("[]")
    if not (_is_ip(host) or (len(host) <= 253 and HOST_NAME.match(host))):
        # Also keeps out what the drivers would read as something else: a socket path, a list of hosts.
        raise Refused(D(N_("The host must be a host name or an IP address.")))
    problem = address_problem(f"db://[{host}]" if ":" in host else f"db://{host}", allow_link_local=False)
    if problem:
        raise Refused(str(problem))
    port = values["port"]
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise Refused(D(N_("The port must be a number from 1 to 65535.")))
    if not _plain(values["database"], 63) or not _plain(values["username"], 63):
        raise Refused(D(N_("The database and the user must be 1 to 63 printable characters without spaces around.")))
    password = values.get("password")
    if password is not None and (len(password) > MAX_PASSWORD or "\0" in password):
        raise Refused(D(N_("The password must be at most %(max)s characters."), max=MAX_PASSWORD))
    namespace = values.get("namespace") or ""
    if namespace and values.get("cluster") is None:
        raise Refused(D(N_("A namespace places a database on a cluster: choose the cluster too.")))
    if namespace and not is_dns_label(namespace):
        raise Refused(D(N_("%(namespace)s is not a valid namespace name."), namespace=namespace))
    return {**values, "host": host, "namespace": namespace}


def _tested(*, actor, action: str, address: Address, password: str, cluster, namespace: str, request) -> str:
    """The server version at ``address``; audits the failure and raises when it does not answer."""
    try:
        with open_session(address, password) as session:
            return session.version
    except DatabaseError as exc:
        audit.record(
            actor=actor,
            action=action,
            result=AuditEvent.Result.FAILURE,
            cluster=cluster.name if cluster else "",
            namespace=namespace,
            kind="DatabaseTarget",
            name=address.name,
            detail={"engine": address.engine, "address": address.where, "error": type(exc).__name__},
            request=request,
        )
        raise


def register_database(
    *,
    actor,
    name: str,
    engine: str,
    host: str,
    port: int,
    database: str,
    username: str,
    password: str,
    use_tls: bool = False,
    cluster=None,
    namespace: str = "",
    request=None,
) -> DatabaseTarget:
    """Register the database once it answers through a read-only session. Nothing is stored when it does not."""
    _allowed(actor)
    values = checked(
        {
            "name": name,
            "engine": engine,
            "host": host,
            "port": port,
            "database": database,
            "username": username,
            "password": password,
            "namespace": namespace,
            "cluster": cluster,
        }
    )
    if taken := _taken(name):
        raise taken
    address = Address(name, engine, values["host"], port, database, username, bool(use_tls))
    namespace = values["namespace"]
    action = "inspection.database.register"
    version = _tested(
        actor=actor, action=action, address=address, password=password, cluster=cluster, namespace=namespace,
        request=request,
    )  # fmt: skip
    try:
        with transaction.atomic():
            target = DatabaseTarget.objects.create(
                name=name,
                engine=engine,
                host=address.host,
                port=port,
                database=database,
                username=username,
                password_encrypted=crypto.encrypt(password) if password else "",
                use_tls=bool(use_tls),
                cluster=cluster,
                namespace=namespace,
                created_by=actor,
                last_seen_at=timezone.now(),
                server_version=version,
            )
            audit.record(
                actor=actor,
                action=action,
                cluster=cluster.name if cluster else "",
                namespace=namespace,
                kind="DatabaseTarget",
                name=name,
                detail={
                    "engine": engine,
                    "address": address.where,
                    "database": database,
                    "user": username,
                    "tls": bool(use_tls),
                    "version": version,
                },
                request=request,
            )
    except IntegrityError:  # registered by someone else meanwhile
        raise _taken(name) or Refused(D(N_("The database could not be saved; try again."))) from None
    return target


def update_database(
    *,
    actor,
    target: DatabaseTarget,
    name: str | None = None,
    engine: str | None = None,
    host: str | None = None,
    port: int | None = None,
    database: str | None = None,
    username: str | None = None,
    password: str | None = None,
    use_tls: bool | None = None,
    cluster=UNCHANGED,
    namespace: str | None = None,
    enabled: bool | None = None,
    request=None,
) -> DatabaseTarget:
    """Change what is given. A new address, account or password is tested first; the password is kept when none
    is given."""
    _allowed(actor)
    given = {
        "name": name, "engine": engine, "host": host, "port": port, "database": database, "username": username,
        "use_tls": use_tls, "namespace": namespace, "enabled": enabled,
    }  # fmt: skip
    changes = {k: v for k, v in given.items() if v is not None and v != getattr(target, k)}
    if cluster is not UNCHANGED and getattr(cluster, "pk", None) != target.cluster_id:
        changes["cluster"] = cluster
    after = {f: changes.get(f, getattr(target, f)) for f in ("name", *CONNECTION_FIELDS, "namespace", "cluster")}
    if password is not None or set(changes) - {"enabled"}:
        after = checked({**after, "password": password})
    if "host" in changes:
        changes["host"] = after["host"]
    if "name" in changes and (taken := _taken(changes["name"], exclude=target.pk)):
        raise taken
    detail: dict[str, object] = {k: v for k, v in changes.items() if k != "cluster"}
    if "cluster" in changes:
        detail["cluster"] = cluster.name if cluster else ""
    if password is not None or any(f in changes for f in CONNECTION_FIELDS):
        secret = password if password is not None else password_of(target)
        address = Address(
            after["name"], after["engine"], after["host"], after["port"], after["database"], after["username"],
            bool(after["use_tls"]),
        )  # fmt: skip
        changes["server_version"] = _tested(
            actor=actor, action="inspection.database.update", address=address, password=secret,
            cluster=target.cluster, namespace=target.namespace, request=request,
        )  # fmt: skip
        if password is not None:
            changes["password_encrypted"] = crypto.encrypt(password) if password else ""
            detail["password"] = "replaced"  # noqa: S105 (a word for the audit log, not the password)
    if not changes:
        return target
    with transaction.atomic():
        for field, value in changes.items():
            setattr(target, field, value)
        target.last_error = ""
        if "server_version" in changes:
            target.last_seen_at = timezone.now()
        target.save()
        audit.record(
            actor=actor,
            action="inspection.database.update",
            cluster=target.cluster.name if target.cluster else "",
            namespace=target.namespace,
            kind="DatabaseTarget",
            name=target.name,
            detail=detail,
            request=request,
        )
    return target


def delete_database(*, actor, target: DatabaseTarget, request=None) -> None:
    _allowed(actor)
    with transaction.atomic():
        audit.record(
            actor=actor,
            action="inspection.database.delete",
            cluster=target.cluster.name if target.cluster else "",
            namespace=target.namespace,
            kind="DatabaseTarget",
            name=target.name,
            detail={"engine": target.engine, "address": address_of(target).where},
            request=request,
        )
        target.delete()
