"""A SIEM receiver that stops receiving is reported: after two minutes of failing, by mail to the security contacts
and the audit forwarders, in the audit log and on their dashboard; once more when it receives again (rsyslog)."""

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.compliance.forwarding import alerts, services
from apps.compliance.models import SyslogDestination
from apps.core.models import AuditEvent
from tests.compliance.test_forwarding import destination
from tests.factories import AdminFactory, UserFactory
from tests.helpers import login
from tests.plugins.alertmanager import Mailbox

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_receiver_down_for_two_minutes_is_mailed_shown_and_audited_and_so_is_its_return(rsyslog, mailbox, client):
    target = destination(rsyslog, name="qradar")
    admin = AdminFactory(email="sec-admin@bank.example")
    rsyslog.stop()

    services.forward_all()
    target.refresh_from_db()
    assert target.failing_since is not None and target.alerted_at is None  # not yet: a blip is not reported
    assert not mailbox.messages

    SyslogDestination.objects.filter(pk=target.pk).update(failing_since=timezone.now() - timedelta(minutes=3))
    services.forward_all()

    mail = mailbox.wait_for(lambda m: m["To"] == "security@bank.example")
    assert "qradar" in mail["Subject"] and "has not received" in mail["Subject"]
    assert "events wait and will be sent in order" in Mailbox.text(mail)
    mailbox.wait_for(lambda m: m["To"] == "sec-admin@bank.example")
    assert AuditEvent.objects.get(action="compliance.siem.failing").result == AuditEvent.Result.FAILURE
    page = login(client, admin).get(reverse("dashboard")).content.decode()
    assert 'data-testid="siem-failing"' in page and "qradar" in page
    assert 'data-testid="siem-failing"' not in login(client, UserFactory()).get(reverse("dashboard")).content.decode()
    services.forward_all()
    assert AuditEvent.objects.filter(action="compliance.siem.failing").count() == 1  # told once

    rsyslog.start()
    services.forward_all()

    back = mailbox.wait_for(lambda m: m["To"] == "security@bank.example" and "again" in m["Subject"])
    assert "nothing was lost" in Mailbox.text(back)
    target.refresh_from_db()
    assert target.failing_since is None and target.alerted_at is None
    assert AuditEvent.objects.filter(action="compliance.siem.recovered").count() == 1
    assert alerts.failing(admin) == []


def test_a_mail_task_run_again_under_the_same_id_sends_only_to_whom_it_did_not_reach(rsyslog, mailbox):
    target = destination(rsyslog, name="arcsight")
    AdminFactory(email="sec-admin@bank.example")
    SyslogDestination.objects.filter(pk=target.pk).update(failing_since=timezone.now() - timedelta(minutes=3))

    task_id = f"retry-{uuid.uuid4().hex}"
    first = alerts.mail_destination.apply(args=(target.pk, "failing"), task_id=task_id).get()
    again = alerts.mail_destination.apply(args=(target.pk, "failing"), task_id=task_id).get()  # as a retry is

    assert first >= 2 and again == 0  # the forwarders (the destination's maker too) and the security contact
    mailbox.wait_for(lambda m: m["To"] == "security@bank.example")
    received = [m["To"] for m in mailbox.messages]
    assert len(received) == len(set(received)) == first and "sec-admin@bank.example" in received
