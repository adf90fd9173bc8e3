"""The door to inspected databases (apps/inspection/databases.py) against a real PostgreSQL and a real MariaDB
(tests/plugins/databases.py): registration tests the connection and stores the password encrypted, sessions are
read-only with statement timeouts and bounded rows, and every way a connection fails (refused, silent, unknown host,
wrong password, unknown database, no TLS) is a sentence, with nothing stored and the password nowhere."""

from __future__ import annotations

import json
import logging
import socket

import pytest

from apps.core import crypto
from apps.core.deferred import render
from apps.core.models import AuditEvent
from apps.inspection import databases
from apps.inspection.databases import Address
from apps.inspection.models import DatabaseTarget
from tests.factories import UserFactory
from tests.plugins.databases import APP, READ_ONLY
from tests.plugins.served import free_port

ENGINES = ["postgresql", "mysql"]


@pytest.fixture
def secrets_logged(caplog):
    """Every log record of the test, at every level, for asserting what never appears in them."""
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.fixture
def server(request, engine):
    """The running server of ``engine`` (the session's PostgreSQL or MariaDB)."""
    return request.getfixturevalue("inspected_postgresql" if engine == "postgresql" else "inspected_mariadb")


@pytest.fixture
def silent_port():
    """A loopback port that accepts TCP connections and never says a word (a server hung, a firewall black hole)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def assert_password_nowhere(password: str, caplog, *more: str) -> None:
    assert password not in caplog.text
    for event in AuditEvent.objects.all():
        assert password not in json.dumps(event.detail) and password not in event.object_name
    for target in DatabaseTarget.objects.all():
        assert password not in target.last_error and password not in target.password_encrypted
    for text in more:
        assert password not in text


@pytest.mark.parametrize("engine", ENGINES)
def test_registration_tests_the_connection_and_keeps_the_password_encrypted(
    db, engine, server, admin_user, secrets_logged
):
    target = databases.register_database(actor=admin_user, name="orders", **server.target())

    target.refresh_from_db()
    assert (target.engine, target.host, target.port, target.database, target.username) == (
        engine, "127.0.0.1", server.port, "bank", READ_ONLY,
    )  # fmt: skip
    assert target.password_encrypted != server.password
    assert crypto.decrypt(target.password_encrypted) == server.password
    assert target.last_seen_at is not None and target.last_error == "" and target.created_by == admin_user
    assert target.server_version.startswith("15.") if engine == "postgresql" else "MariaDB" in target.server_version
    [event] = events("inspection.database.register")
    assert (event.result, event.object_kind, event.object_name, event.actor_id) == (
        AuditEvent.Result.SUCCESS, "DatabaseTarget", "orders", admin_user.pk,
    )  # fmt: skip
    assert event.detail == {
        "engine": engine, "address": f"127.0.0.1:{server.port}", "database": "bank", "user": READ_ONLY,
        "tls": False, "version": target.server_version,
    }  # fmt: skip

    with databases.connect(target) as session:
        assert session.value("SELECT 1") == 1
    assert_password_nowhere(server.password, secrets_logged)


@pytest.mark.parametrize(
    ("engine", "error"),
    [
        ("postgresql", "error 25006: cannot execute CREATE TABLE in a read-only transaction"),
        ("mysql", "error 1792: Cannot execute statement in a READ ONLY transaction"),
    ],
)
def test_sessions_are_read_only_even_for_an_account_that_may_write(db, engine, server, error):
    address = Address("orders", engine, "127.0.0.1", server.port, "bank", APP)
    with databases.open_session(address, server.password) as session, pytest.raises(databases.QueryFailed) as refused:
        session.rows("CREATE TABLE kubemate_was_here (id INT)")
    assert str(refused.value) == f"Database orders answered a statement of Kubemate's with {error}"


@pytest.mark.parametrize(
    ("engine", "slow", "many"),
    [
        ("postgresql", "SELECT pg_sleep(3)", "SELECT generate_series(1, 1000)"),
        ("mysql", "SELECT SLEEP(3)", "SELECT seq FROM seq_1_to_1000"),
    ],
)
def test_statements_are_cancelled_at_the_timeout_and_answers_are_bounded(db, engine, server, slow, many, monkeypatch):
    monkeypatch.setattr(databases, "STATEMENT_SECONDS", 1)
    address = Address("orders", engine, "127.0.0.1", server.port, "bank", READ_ONLY)
    with databases.open_session(address, server.password) as session:
        assert [row[0] for row in session.rows(many, limit=5)] == [1, 2, 3, 4, 5]
        with pytest.raises(databases.QueryFailed) as cancelled:
            session.rows(slow)
        assert str(cancelled.value) == (
            "A statement Kubemate sent to database orders did not finish within 1 seconds and was cancelled."
        )
        assert session.value("SELECT 2") == 2  # the session goes on after a cancelled statement


@pytest.mark.parametrize("engine", ENGINES)
def test_connections_that_fail_are_sentences_and_nothing_is_registered(
    db, engine, server, silent_port, admin_user, secrets_logged, monkeypatch
):
    monkeypatch.setattr(databases, "CONNECT_SECONDS", 2)
    dead = free_port()
    cases = [
        (
            {"port": dead},
            databases.Unreachable,
            f"Database orders at 127.0.0.1:{dead} refused the connection: check that the server runs and listens "
            "on that address and port.",
        ),
        (
            {"port": silent_port},
            databases.Unreachable,
            f"Database orders at 127.0.0.1:{silent_port} did not answer within 2 seconds.",
        ),
        (
            {"host": "no-such-host.invalid"},
            databases.Unreachable,
            "The host name of database orders (no-such-host.invalid) does not resolve.",
        ),
        (
            {"password": "not-the-password"},
            databases.LoginRefused,
            f"Database orders at 127.0.0.1:{server.port} refused user kubemate_ro: the user does not exist or the "
            "password is wrong.",
        ),
        (
            {"username": "nobody"},
            databases.LoginRefused,
            f"Database orders at 127.0.0.1:{server.port} refused user nobody: the user does not exist or the "
            "password is wrong.",
        ),
        (
            {"database": "nowhere"},
            databases.LoginRefused,
            f"The server of database orders at 127.0.0.1:{server.port} has no database named nowhere.",
        ),
    ]
    for changes, error, sentence in cases:
        with pytest.raises(error) as failed:
            databases.register_database(actor=admin_user, name="orders", **server.target(**changes))
        assert str(failed.value) == sentence, changes

    assert not DatabaseTarget.objects.exists()
    failures = events("inspection.database.register")
    assert [e.result for e in failures] == [AuditEvent.Result.FAILURE] * len(cases)
    assert [e.detail["error"] for e in failures] == [error.__name__ for _changes, error, _sentence in cases]
    assert_password_nowhere(server.password, secrets_logged)


@pytest.mark.parametrize(
    ("engine", "error"),
    [
        ("postgresql", "server does not support SSL, but SSL was required"),
        ("mysql", "SSL is required but the server doesn't support it"),
    ],
)
def test_tls_asked_for_is_required_never_quietly_dropped(db, engine, server, error):
    with pytest.raises(databases.Unreachable) as refused:
        databases.register_database(actor=None, name="orders", use_tls=True, **server.target())
    assert str(refused.value) == f"Database orders at 127.0.0.1:{server.port} could not be reached over TLS: {error}"


def test_a_database_without_free_connections_says_so(db, inspected_postgresql):
    held = [inspected_postgresql.connect(user=APP) for _ in range(27)]  # all but the 3 kept for superusers
    try:
        with pytest.raises(databases.Unreachable) as full:
            databases.register_database(actor=None, name="orders", **inspected_postgresql.target())
    finally:
        for connection in held:
            connection.close()
    assert str(full.value) == (
        f"Database orders at 127.0.0.1:{inspected_postgresql.port} has no connection free (max_connections is "
        "reached): find who holds the connections, or raise the limit."
    )


@pytest.mark.parametrize(
    ("changes", "sentence"),
    [
        ({"name": "orders db"}, "The name must be 1 to 63 letters, digits, '-' or '_'."),
        ({"engine": "oracle"}, "Kubemate cannot inspect databases of engine oracle."),
        ({"host": "/var/run/postgresql"}, "The host must be a host name or an IP address."),
        ({"host": "db1,db2"}, "The host must be a host name or an IP address."),
        ({"port": 0}, "The port must be a number from 1 to 65535."),
        ({"port": 70000}, "The port must be a number from 1 to 65535."),
        ({"database": ""}, "The database and the user must be 1 to 63 printable characters without spaces around."),
        ({"username": " ro"}, "The database and the user must be 1 to 63 printable characters without spaces around."),
        ({"password": "x" * 513}, "The password must be at most 512 characters."),
        ({"namespace": "payments"}, "A namespace places a database on a cluster: choose the cluster too."),
    ],
)
def test_registration_refuses_what_cannot_work_before_connecting(db, inspected_postgresql, changes, sentence):
    values = {"name": "orders", **inspected_postgresql.target(), **changes}
    with pytest.raises(databases.Refused) as refused:
        databases.register_database(actor=None, **values)
    assert str(refused.value) == sentence
    assert not DatabaseTarget.objects.exists() and not events("inspection.database.register")


def test_cloud_metadata_addresses_are_refused(db, inspected_postgresql):
    with pytest.raises(databases.Refused) as refused:
        databases.register_database(actor=None, name="orders", **inspected_postgresql.target(host="169.254.169.254"))
    assert str(refused.value).startswith("169.254.169.254 is a link-local or cloud metadata address")


def test_names_are_unique_and_people_without_the_capability_are_refused(db, inspected_postgresql):
    databases.register_database(actor=None, name="orders", **inspected_postgresql.target())
    with pytest.raises(databases.Refused) as taken:
        databases.register_database(actor=None, name="orders", **inspected_postgresql.target())
    assert str(taken.value) == "A database named orders is already registered."

    nobody = UserFactory()
    with pytest.raises(databases.Refused) as refused:
        databases.register_database(actor=nobody, name="other", **inspected_postgresql.target())
    assert str(refused.value) == "You may not register or change databases to inspect."
    target = DatabaseTarget.objects.get()
    with pytest.raises(databases.Refused):
        databases.update_database(actor=nobody, target=target, enabled=False)
    with pytest.raises(databases.Refused):
        databases.delete_database(actor=nobody, target=target)
    assert DatabaseTarget.objects.count() == 1


def test_changes_are_tested_and_audited_and_removal_is_audited(db, inspected_postgresql, admin_user, secrets_logged):
    password = inspected_postgresql.password
    target = databases.register_database(actor=admin_user, name="orders", **inspected_postgresql.target())

    databases.update_database(actor=admin_user, target=target, name="orders-main", enabled=False)
    target.refresh_from_db()
    assert (target.name, target.enabled) == ("orders-main", False)

    with pytest.raises(databases.LoginRefused):
        databases.update_database(actor=admin_user, target=target, password="not-the-password")
    dead = free_port()
    with pytest.raises(databases.Unreachable):
        databases.update_database(actor=admin_user, target=target, port=dead)
    target.refresh_from_db()
    assert crypto.decrypt(target.password_encrypted) == password and target.port == inspected_postgresql.port

    databases.update_database(actor=admin_user, target=target, password=password)  # given again: tested, stored anew
    databases.update_database(actor=admin_user, target=target, database="plain")

    updates = events("inspection.database.update")
    assert [e.result for e in updates] == [
        AuditEvent.Result.SUCCESS,
        AuditEvent.Result.FAILURE,
        AuditEvent.Result.FAILURE,
        AuditEvent.Result.SUCCESS,
        AuditEvent.Result.SUCCESS,
    ]
    assert updates[0].detail == {"name": "orders-main", "enabled": False}
    assert updates[3].detail == {"password": "replaced"}
    assert updates[4].detail == {"database": "plain"}
    target.refresh_from_db()
    assert target.database == "plain" and crypto.decrypt(target.password_encrypted) == password

    databases.delete_database(actor=admin_user, target=target)
    assert not DatabaseTarget.objects.exists()
    [deleted] = events("inspection.database.delete")
    assert deleted.object_name == "orders-main"
    assert deleted.detail == {"engine": "postgresql", "address": f"127.0.0.1:{inspected_postgresql.port}"}
    assert_password_nowhere(password, secrets_logged)


def test_connect_keeps_when_the_database_last_answered_and_why_it_did_not(db, inspected_postgresql):
    target = databases.register_database(actor=None, name="orders", **inspected_postgresql.target())
    dead = free_port()
    DatabaseTarget.objects.filter(pk=target.pk).update(port=dead)
    target.refresh_from_db()
    with pytest.raises(databases.Unreachable):
        databases.connect(target)
    target.refresh_from_db()
    assert render(target.last_error) == (
        f"Database orders at 127.0.0.1:{dead} refused the connection: check that the server runs and listens on "
        "that address and port."
    )

    DatabaseTarget.objects.filter(pk=target.pk).update(port=inspected_postgresql.port)
    target.refresh_from_db()
    seen_before = target.last_seen_at
    databases.connect(target).close()
    target.refresh_from_db()
    assert target.last_error == "" and target.last_seen_at > seen_before

    DatabaseTarget.objects.filter(pk=target.pk).update(password_encrypted="not a token")
    target.refresh_from_db()
    with pytest.raises(databases.DatabaseError) as undecryptable:
        databases.connect(target)
    assert str(undecryptable.value) == (
        "The stored password of database orders cannot be decrypted with the configured keys; give the password again."
    )
