"""Kubemate's own database backed up to versitygw (S3) and restored with ``manage.py restore_database``, against the
real PostgreSQL: the earlier state comes back with an intact audit chain whose last event is the restore's; a dry
run changes nothing and leaves no scratch database; a tampered backup and a person who cannot prove they may are
refused before anything is restored.

Transactional tests: a restore replaces tables, which cannot happen inside a test's transaction, and pg_dump reads
what other sessions committed."""

from __future__ import annotations

import getpass
import hashlib
import io
import subprocess
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

from apps.accounts.models import Project
from apps.backups import database, pgdump, s3, services
from apps.backups import restore as restores
from apps.backups.models import Backup, Kind, Plan, Restore
from apps.core import audit
from apps.core.deferred import render
from apps.core.models import AuditEvent, AuditHead
from apps.releases.models import Release
from tests.backups.rows import versitygw_target
from tests.factories import PASSWORD, AdminFactory, ClusterFactory, UserFactory
from tests.helpers import grant, unique

pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()
IMAGE = "registry.bank.local/payments/api:1.4.2"


@pytest.fixture
def admin(transactional_db):
    return AdminFactory()


@pytest.fixture
def target(s3_server, s3_bucket, admin):
    return versitygw_target(admin, s3_server, s3_bucket)


@pytest.fixture
def plan(target, admin):
    found = Plan(kind=Kind.DATABASE, name="kubemate-db", target=target, keep_count=7, keep_days=7, rpo_hours=24)
    return services.save_plan(actor=admin, plan=found)


@pytest.fixture
def release(admin):
    project = Project.objects.create(
        cluster=ClusterFactory(), slug=unique("p"), name="Payments", namespaces=["payments"]
    )
    return Release.objects.create(
        project=project, namespace="payments", name="api", spec={"image": IMAGE, "replicas": 3}, created_by=admin
    )


@pytest.fixture
def password(monkeypatch):
    """What the person types when the command asks for the password."""

    def types(value: str) -> None:
        monkeypatch.setattr(getpass, "getpass", lambda prompt="", stream=None: value)

    return types


def scratch_databases() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database")
        return [name for (name,) in cursor.fetchall() if pgdump.is_scratch(name)]


def restore(*args: str) -> str:
    out = io.StringIO()
    call_command("restore_database", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_the_database_comes_back_from_its_backup_with_an_intact_audit_chain(
    plan, target, admin, release, password, s3_server
):
    operator = UserFactory(email="ops@bank.example")
    started = time.monotonic()
    backup = services.take_backup_now(actor=admin, plan=plan)
    took = time.monotonic() - started

    assert backup.status == Backup.Status.SUCCEEDED
    assert backup.key == f"kubemate/test/database/{backup.name}.dump.sealed"
    assert s3_server.keys(target.bucket, "kubemate/test/database/") == [backup.key]
    stored = (s3_server.path / target.bucket / backup.key).read_bytes()
    assert len(stored) == backup.size_bytes
    assert hashlib.sha256(stored).hexdigest() == backup.sha256
    assert b"ops@bank.example" not in stored and b"PGDMP" not in stored  # sealed: the dump cannot be read there
    detail = backup.detail
    assert detail["users"] == 2
    assert detail["releases"] == 1
    assert detail["tables"] > 50
    assert detail["entries"] > detail["tables"]
    assert detail["server_version"].split(".")[0] == detail["pg_dump_version"].split(".")[0]
    assert detail["migrations"]["backups"] == database.code_migrations()["backups"]
    start_event = AuditEvent.objects.get(action="backups.backup.start", object_name=backup.name)
    assert detail["audit_seq"] == start_event.seq  # the chain's head in the dump's own snapshot
    assert detail["audit_hash"] == start_event.hash

    # Afterwards: a person changed and locked out, a release changed, a new person, a new release.
    User.objects.filter(pk=operator.pk).update(email="attacker@elsewhere.example", is_active=False)
    Release.objects.filter(pk=release.pk).update(spec={"image": "registry.bank.local/payments/api:evil", "replicas": 0})
    newcomer = UserFactory()
    Release.objects.create(project=release.project, namespace="payments", name="worker", spec={"image": IMAGE})
    password(PASSWORD)

    started = time.monotonic()
    out = restore("--target", target.name, "--key", backup.key, "--as", admin.username)
    restored_in = time.monotonic() - started

    operator.refresh_from_db()
    assert (operator.email, operator.is_active) == ("ops@bank.example", True)
    release.refresh_from_db()
    assert release.spec == {"image": IMAGE, "replicas": 3}
    assert not User.objects.filter(pk=newcomer.pk).exists()
    assert list(Release.objects.values_list("name", flat=True)) == ["api"]
    assert list(audit.verify()) == []
    last = AuditEvent.objects.order_by("-seq").first()
    assert last.action == "backups.database.restored"
    assert last.seq == detail["audit_seq"] + 1
    assert (last.actor_id, last.actor_name, last.result) == (admin.pk, admin.username, "success")
    assert last.detail["source"] == backup.key
    assert last.detail["sha256"] == backup.sha256
    assert last.detail["before"]["users"] == 3 and last.detail["after"]["users"] == 2
    assert last.detail["before"]["releases"] == 2 and last.detail["after"]["releases"] == 1
    assert AuditHead.objects.get(pk=1).seq == last.seq
    row = Restore.objects.get(kind=Kind.DATABASE)
    assert (row.status, row.actor_id, row.backup_name) == (Restore.Status.SUCCEEDED, admin.pk, backup.key)
    assert row.changed["after"]["audit_seq"] == detail["audit_seq"]
    # Its own row was Running in the dump: settled, so the job reaper does not end it as failed.
    settled = Backup.objects.get(name=backup.name)
    assert (settled.status, settled.key, settled.sha256) == (Backup.Status.SUCCEEDED, backup.key, backup.sha256)
    assert settled.job.status == "succeeded"
    assert "Restored in" in out and f"up to event {last.seq}" in out
    assert scratch_databases() == []
    print(
        f"\nbackup {took:.2f} s (dump {detail['dump_seconds']} s, {detail['dump_bytes']} bytes), restore command "
        f"{restored_in:.2f} s (scratch {last.detail['seconds']['scratch_restore']} s, live "
        f"{last.detail['seconds']['restore']} s)"
    )


def test_a_dry_run_reports_what_would_come_back_and_changes_nothing(plan, target, admin, release, password):
    backup = services.take_backup_now(actor=admin, plan=plan)
    for _ in range(2):
        UserFactory()
    Release.objects.filter(pk=release.pk).update(spec={"image": "changed", "replicas": 1})
    live = (
        User.objects.count(),
        Release.objects.get(pk=release.pk).spec,
        AuditEvent.objects.count(),
        AuditHead.objects.get(pk=1).seq,
        Restore.objects.count(),
    )

    report = restores.restore(actor=admin, target=target, key=backup.key, dry_run=True)
    password(PASSWORD)
    out = restore("--target", target.name, "--key", backup.key, "--as", admin.username, "--dry-run")

    detail = backup.detail
    assert report["restored"] is False
    assert report["refusal"] == ""
    assert report["sha256"] == backup.sha256
    assert report["dumped_at"].startswith(f"{backup.started_at:%Y-%m-%d} ")  # pg_dump's own words: its header
    assert report["entries"] == detail["entries"] and report["tables"] == detail["tables"]
    assert report["backup"]["users"] == detail["users"] == 1
    assert report["backup"]["releases"] == 1
    assert report["backup"]["audit_seq"] == detail["audit_seq"]
    assert report["backup"]["audit_events"] == detail["audit_seq"]
    assert report["backup"]["chain_checked"] is True and report["backup"]["chain_problems"] == 0
    assert report["backup"]["schema_differences"] == []
    assert report["live"]["users"] == 3
    assert report["live"]["audit_seq"] == live[3]
    assert f"The backup holds 1 users, 1 releases and {detail['audit_seq']} audit events" in out
    assert f"The live database holds 3 users, 1 releases and {live[2]} audit events" in out
    assert "The audit chain in the backup is intact." in out
    assert "Dry run: nothing was changed" in out
    assert f"A restore would bring back the database as it was at {report['dumped_at']}." in out
    assert (
        User.objects.count(),
        Release.objects.get(pk=release.pk).spec,
        AuditEvent.objects.count(),
        AuditHead.objects.get(pk=1).seq,
        Restore.objects.count(),
    ) == live
    assert list(audit.verify()) == []
    assert scratch_databases() == []

    listed = restore("--list", "--target", target.name, "--as", admin.username)
    assert listed.startswith(f"{backup.key}\t{backup.size_bytes}\t")
    assert "Succeeded" in listed


def test_a_tampered_backup_is_refused_before_anything_is_restored(plan, target, admin, release, password, s3_server):
    backup = services.take_backup_now(actor=admin, plan=plan)
    Release.objects.filter(pk=release.pk).update(spec={"image": "changed"})
    stored = s3_server.path / target.bucket / backup.key
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    password(PASSWORD)

    stored.write_bytes(bytes(data))  # a byte flipped on the storage itself
    with pytest.raises(CommandError, match="does not match the checksum it was written with"):
        restore("--target", target.name, "--key", backup.key, "--as", admin.username)

    # The same bytes stored with their own checksum (by someone who may write to the bucket): the seal refuses them.
    s3_server.s3.put_object(
        Bucket=target.bucket,
        Key=backup.key,
        Body=bytes(data),
        Metadata={"sha256": hashlib.sha256(bytes(data)).hexdigest()},
    )
    with pytest.raises(CommandError, match="altered or damaged"):
        restore("--target", target.name, "--key", backup.key, "--as", admin.username)

    assert Release.objects.get(pk=release.pk).spec == {"image": "changed"}
    assert not Restore.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="backups.database.restore").exists()
    assert list(audit.verify()) == []
    assert scratch_databases() == []


def test_a_wrong_password_or_a_person_without_backups_admin_is_refused(
    plan, target, admin, release, password, monkeypatch
):
    backup = services.take_backup_now(actor=admin, plan=plan)
    Release.objects.filter(pk=release.pk).update(spec={"image": "changed"})
    operator = UserFactory()

    password("not-the-password")
    with pytest.raises(CommandError, match="The user name or the password is wrong"):
        restore("--target", target.name, "--key", backup.key, "--as", admin.username)
    password(PASSWORD)
    with pytest.raises(CommandError, match="The user name or the password is wrong"):
        restore("--target", target.name, "--key", backup.key, "--as", "nobody-of-that-name")
    with pytest.raises(CommandError, match=f"{operator.username} may not back up or restore"):
        restore("--target", target.name, "--key", backup.key, "--as", operator.username)
    with pytest.raises(CommandError, match=f"{operator.username} may not back up or restore"):
        call_command("backup_database", "--plan", plan.name, "--as", operator.username, stdout=io.StringIO())

    assert Release.objects.get(pk=release.pk).spec == {"image": "changed"}
    assert not Restore.objects.exists()
    assert Backup.objects.filter(plan=plan).count() == 1
    refused = AuditEvent.objects.filter(action="backups.database.refused").order_by("seq")
    assert [(e.actor_name, e.result, e.detail) for e in refused] == [
        (admin.username, "denied", {"purpose": "restore", "reason": "password"}),
        (operator.username, "denied", {"purpose": "restore", "reason": "capability"}),
        (operator.username, "denied", {"purpose": "backup", "reason": "capability"}),
    ]
    assert list(audit.verify()) == []

    # Given backups.admin (a platform binding), the same person backs up, the password piped with --no-input.
    grant(operator, "platform-admin")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    out = io.StringIO()
    call_command("backup_database", "--plan", plan.name, "--as", operator.username, "--no-input", stdout=out)
    second = Backup.objects.filter(plan=plan).order_by("-started_at").first()
    assert second.actor_id == operator.pk and second.status == Backup.Status.SUCCEEDED
    assert f"{second.key}, {second.size_bytes} bytes, SHA-256 {second.sha256}" in out.getvalue()
    assert s3.exists(s3.access_for(target), second.key)


def test_a_restore_that_cannot_lock_a_table_fails_and_leaves_the_database_as_it_was(
    plan, target, admin, release, password, tmp_path
):
    backup = services.take_backup_now(actor=admin, plan=plan)
    Release.objects.filter(pk=release.pk).update(spec={"image": "changed"})
    newcomer = UserFactory()
    copy = tmp_path / backup.key.rsplit("/", 1)[1]  # downloaded by hand with any S3 client
    s3.download(s3.access_for(target), backup.key, copy, max_bytes=1 << 30)
    password(PASSWORD)

    with pgdump.connect(autocommit=False) as worker:  # a worker still reading releases, in its transaction
        worker.execute("SELECT count(*) FROM releases_release").fetchone()
        with pytest.raises(
            CommandError, match=r"the database was left as it was: The restore waited more than 1 seconds"
        ):
            restore("--file", str(copy), "--as", admin.username, "--lock-timeout", "1")
        worker.rollback()

    assert Release.objects.get(pk=release.pk).spec == {"image": "changed"}
    assert User.objects.filter(pk=newcomer.pk).exists()
    row = Restore.objects.get(kind=Kind.DATABASE)
    assert (row.status, row.backup_name, row.actor_id) == (Restore.Status.FAILED, copy.name, admin.pk)
    assert "waited more than 1 seconds for a table other sessions hold" in render(row.message)
    last = AuditEvent.objects.order_by("-seq").first()
    assert (last.action, last.result, last.actor_name) == ("backups.database.restore_failed", "failure", admin.username)
    assert last.detail["after"] is None and last.detail["before"]["users"] == 2
    assert list(audit.verify()) == []
    assert scratch_databases() == []

    # With the worker gone, the same file restores.
    out = restore("--file", str(copy), "--as", admin.username, "--lock-timeout", "5")
    assert "Restored in" in out
    assert Release.objects.get(pk=release.pk).spec == {"image": IMAGE, "replicas": 3}
    assert not User.objects.filter(pk=newcomer.pk).exists()
    assert Backup.objects.get(name=backup.name).status == Backup.Status.SUCCEEDED
    assert AuditEvent.objects.order_by("-seq").first().action == "backups.database.restored"
    assert list(audit.verify()) == []


def test_the_password_reaches_the_tools_only_in_a_private_passfile(monkeypatch, tmp_path):
    secret = "pa:ss\\word-7f3a9c"
    seen = []
    real = subprocess.Popen

    def spy(args, **kwargs):
        passfile = Path(kwargs["env"]["PGPASSFILE"])
        modes = (passfile.stat().st_mode & 0o777, passfile.parent.stat().st_mode & 0o777)
        seen.append((list(args), dict(kwargs["env"]), passfile, passfile.read_text(), modes))
        return real(args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    db = {**pgdump.live_settings(), "PASSWORD": secret}

    size = pgdump.dump(tmp_path / "kubemate.dump", db)  # the test server trusts loopback: the file is not read

    assert size > 0
    [(args, env, passfile, content, modes)] = seen
    assert not any("pa:ss" in arg or "7f3a9c" in arg for arg in args)
    assert "PGPASSWORD" not in env and not any("7f3a9c" in value for value in env.values())
    assert content == "*:*:*:*:pa\\:ss\\\\word-7f3a9c\n"
    assert modes == (0o600, 0o700)
    assert not passfile.exists()  # removed after the call
    assert "7f3a9c" not in pgdump._reason(f"pg_dump: error: FATAL: password {secret} refused", db)
