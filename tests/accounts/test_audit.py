import csv
import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import ProgrammingError
from django.test import Client
from django.urls import reverse

from apps.accounts import services
from apps.accounts.models import Role
from apps.core import audit
from apps.core.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def write_events(actor, count=3):
    return [
        audit.record(
            actor=actor,
            action="clusters.deployment.scale",
            cluster="prod",
            namespace="payments",
            kind="Deployment",
            name=f"api-{i}",
            detail={"replicas": i},
        )
        for i in range(count)
    ]


def tamper(sql, params):
    """Change the table the way an intruder with database access would: around the append-only trigger."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE accounts_auditevent DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE accounts_auditevent ENABLE TRIGGER USER")


def test_events_form_a_gapless_hash_chain(operator):
    # Creating the operator was audited too (apps/accounts/changes.py): the chain starts before these three.
    first, second, third = write_events(operator)
    assert [second.seq, third.seq] == [first.seq + 1, first.seq + 2]
    assert AuditEvent.objects.get(seq=1).prev_hash == "0" * 64
    assert first.prev_hash == AuditEvent.objects.get(seq=first.seq - 1).hash
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert list(audit.verify()) == []


def test_audit_verify_passes_on_an_intact_log(operator, capsys):
    events = write_events(operator)
    call_command("audit_verify")
    assert f"The audit log is intact: {events[-1].seq} events verified." in capsys.readouterr().out


def test_audit_verify_fails_after_a_row_is_altered_in_the_database(operator):
    events = write_events(operator)
    tamper("UPDATE accounts_auditevent SET actor_name = %s WHERE seq = %s", ["someone-else", events[1].seq])

    with pytest.raises(CommandError, match="tampered with: 1 problem"):
        call_command("audit_verify")
    assert [p.sentence for p in audit.verify()] == [f"event {events[1].seq} was altered after it was written"]


def test_audit_verify_fails_after_a_row_is_deleted(operator):
    events = write_events(operator)
    tamper("DELETE FROM accounts_auditevent WHERE seq = %s", [events[1].seq])
    sentences = [p.sentence for p in audit.verify()]
    assert f"events {events[1].seq} to {events[1].seq} are missing" in sentences
    assert f"event {events[2].seq} does not follow the event before it" in sentences


def test_audit_verify_notices_the_newest_rows_removed(operator):
    events = write_events(operator)
    tamper("DELETE FROM accounts_auditevent WHERE seq = %s", [events[-1].seq])
    assert [p.sentence for p in audit.verify()] == [
        f"the newest events after {events[1].seq} (up to {events[2].seq}) are missing"
    ]


def test_the_database_refuses_updates_and_deletes(operator):
    write_events(operator, 1)
    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_auditevent SET result = 'failure'")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.update(result="failure")


def test_event_is_written_in_the_same_transaction_as_the_change(operator, admin_user):
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.save_role(actor=admin_user, role=Role(slug="ops", name_en="Ops", name_zh="运维", capabilities=[]))
        raise RuntimeError("the request failed after the change")
    assert not Role.objects.filter(slug="ops").exists()
    assert AuditEvent.objects.count() == before

    services.save_role(
        actor=admin_user, role=Role(slug="ops", name_en="Ops", name_zh="运维", capabilities=["pods.logs"])
    )
    event = AuditEvent.objects.get(seq__gt=before)  # one event: the service's, not the model signal's as well
    assert (event.action, event.actor_name, event.object_name) == ("accounts.role.create", admin_user.username, "ops")
    assert event.detail == {"capabilities": ["pods.logs"]}


def test_audit_page_needs_the_audit_capability(operator_client):
    assert Client().get(reverse("accounts:audit_list")).status_code == 302
    assert operator_client.get(reverse("accounts:audit_list")).status_code == 404
    assert operator_client.get(reverse("accounts:audit_export")).status_code == 404


def test_audit_search_filters_and_csv_export(admin_client_, admin_user, django_assert_max_num_queries):
    other = UserFactory(username="li.wei")
    write_events(admin_user, 2)
    audit.record(actor=other, action="accounts.login", result=AuditEvent.Result.FAILURE)

    with django_assert_max_num_queries(12):
        html = admin_client_.get(reverse("accounts:audit_list"), {"actor": "li.wei"}).content.decode()
    assert html.count('data-testid="audit-row"') == 1
    assert "accounts.login" in html

    failures = admin_client_.get(reverse("accounts:audit_list"), {"result": "failure"}, HTTP_HX_REQUEST="true")
    assert failures.content.decode().count('data-testid="audit-row"') == 1
    assert "<html" not in failures.content.decode()

    export = admin_client_.get(reverse("accounts:audit_export"), {"cluster": "prod"})
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))
    assert rows[0][:5] == ["seq", "time", "actor", "action", "result"]
    assert [r[8] for r in rows[1:]] == ["api-0", "api-1"]


def test_system_events_show_what_they_touched(admin_client_):
    audit.record(
        actor=None,
        action="accounts.rbac.stale_removed",
        cluster="prod",
        detail={"what": "RoleBinding team-b/kubemate-b7"},
    )
    html = admin_client_.get(reverse("accounts:audit_list")).content.decode()
    assert "RoleBinding team-b/kubemate-b7" in html


def test_an_events_hash_covers_every_field_and_the_previous_hash():
    """The canonical form, written out here so that any change of the formula fails: SHA-256 over compact,
    key-sorted JSON of the hashed fields, times in UTC with microseconds, prev_hash included."""
    import hashlib
    import json
    from datetime import UTC, datetime

    event = AuditEvent(
        seq=7,
        created_at=datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC),
        actor_id=42,
        actor_name="li.wei",
        action="clusters.deployment.scale",
        result="success",
        cluster="prod",
        namespace="payments",
        object_kind="Deployment",
        object_name="api",
        detail={"replicas": 3},
        ip="10.0.0.8",
        prev_hash="ab" * 32,
    )
    canonical = (
        '{"action":"clusters.deployment.scale","actor_id":42,"actor_name":"li.wei","cluster":"prod",'
        '"created_at":"2026-03-01T09:30:15.123456+00:00","detail":{"replicas":3},"ip":"10.0.0.8",'
        '"namespace":"payments","object_kind":"Deployment","object_name":"api","prev_hash":"' + "ab" * 32 + '",'
        '"result":"success","seq":7}'
    )
    assert json.loads(canonical)["prev_hash"] == event.prev_hash
    assert audit.event_hash(event) == hashlib.sha256(canonical.encode()).hexdigest()

    event.prev_hash = "cd" * 32
    assert audit.event_hash(event) != hashlib.sha256(canonical.encode()).hexdigest()


def test_audit_verify_notices_a_changed_previous_hash(operator):
    events = write_events(operator)
    tamper("UPDATE accounts_auditevent SET prev_hash = %s WHERE seq = %s", ["f" * 64, events[1].seq])
    assert [p.sentence for p in audit.verify()] == [
        f"event {events[1].seq} does not follow the event before it",
        f"event {events[1].seq} was altered after it was written",
    ]


def test_audit_verify_notices_a_rewritten_row_even_when_the_next_link_is_mended(operator):
    """An intruder who knows the formula rewrites event 2 with a valid hash and points event 3 at it:
    event 3's own hash covers its prev_hash, so the chain still breaks there."""
    events = write_events(operator)
    forged = AuditEvent.objects.get(seq=events[1].seq)
    forged.actor_name = "someone-else"
    forged_hash = audit.event_hash(forged)
    tamper(
        "UPDATE accounts_auditevent SET actor_name = %s, hash = %s WHERE seq = %s",
        ["someone-else", forged_hash, events[1].seq],
    )
    tamper("UPDATE accounts_auditevent SET prev_hash = %s WHERE seq = %s", [forged_hash, events[2].seq])
    assert [p.sentence for p in audit.verify()] == [f"event {events[2].seq} was altered after it was written"]


def test_the_audit_log_says_what_each_action_means_in_the_readers_language(admin_client_):
    from django.conf import settings
    from django.urls import reverse

    from apps.core import audit as audit_log

    audit_log.record(actor=None, action="clusters.workload.scale", kind="Deployment", name="web")
    audit_log.record(actor=None, action="admin.auth.user.change")
    english = admin_client_.get(reverse("accounts:audit_list")).content.decode()
    assert "Scaled a workload" in english and "Changed through Django admin" in english
    admin_client_.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    chinese = admin_client_.get(reverse("accounts:audit_list")).content.decode()
    assert "扩缩工作负载" in chinese and "clusters.workload.scale" in chinese  # the code stays beside the words
