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
    first, second, third = write_events(operator)
    assert [first.seq, second.seq, third.seq] == [1, 2, 3]
    assert first.prev_hash == "0" * 64
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert list(audit.verify()) == []


def test_audit_verify_passes_on_an_intact_log(operator, capsys):
    write_events(operator)
    call_command("audit_verify")
    assert "The audit log is intact: 3 events verified." in capsys.readouterr().out


def test_audit_verify_fails_after_a_row_is_altered_in_the_database(operator):
    events = write_events(operator)
    tamper("UPDATE accounts_auditevent SET actor_name = %s WHERE seq = %s", ["someone-else", events[1].seq])

    with pytest.raises(CommandError, match="tampered with: 1 problem"):
        call_command("audit_verify")
    assert [p.sentence for p in audit.verify()] == ["event 2 was altered after it was written"]


def test_audit_verify_fails_after_a_row_is_deleted(operator):
    events = write_events(operator)
    tamper("DELETE FROM accounts_auditevent WHERE seq = %s", [events[1].seq])
    sentences = [p.sentence for p in audit.verify()]
    assert "events 2 to 2 are missing" in sentences
    assert "event 3 does not follow the event before it" in sentences


def test_audit_verify_notices_the_newest_rows_removed(operator):
    events = write_events(operator)
    tamper("DELETE FROM accounts_auditevent WHERE seq = %s", [events[-1].seq])
    assert [p.sentence for p in audit.verify()] == ["the newest events after 2 (up to 3) are missing"]


def test_the_database_refuses_updates_and_deletes(operator):
    write_events(operator, 1)
    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_auditevent SET result = 'failure'")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.update(result="failure")


def test_event_is_written_in_the_same_transaction_as_the_change(operator, admin_user):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.save_role(actor=admin_user, role=Role(slug="ops", name_en="Ops", name_zh="运维", capabilities=[]))
        raise RuntimeError("the request failed after the change")
    assert not Role.objects.filter(slug="ops").exists()
    assert AuditEvent.objects.count() == 0

    services.save_role(
        actor=admin_user, role=Role(slug="ops", name_en="Ops", name_zh="运维", capabilities=["pods.logs"])
    )
    event = AuditEvent.objects.get()
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
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
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
