"""The audit forwarding pages: platform administrators only, every change audited (console and Django admin), a
form that refuses what cannot work with a sentence, and the delivery state in the reader's language."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.compliance.forwarding import services
from apps.compliance.models import SyslogDestination
from apps.core import deferred
from apps.core.models import AuditEvent
from apps.core.reauth import reauth_url
from tests.factories import AdminFactory, UserFactory
from tests.helpers import grant, login

pytestmark = pytest.mark.django_db

FORM = {
    "name": "qradar",
    "host": "siem.bank.example",
    "port": "6514",
    "transport": "tls",
    "format": "json",
    "enabled": "on",
}


def admin_browser():
    return login(Client(), AdminFactory(username="sec-admin"), recent_auth=True)


def test_only_who_may_forward_sees_the_pages():
    row = SyslogDestination.objects.create(name="siem", host="127.0.0.1", port=6514)
    auditor = UserFactory()
    grant(auditor, "auditor")
    for url in (
        reverse("compliance:destination_list"),
        reverse("compliance:destination_create"),
        reverse("compliance:destination_edit", args=[row.pk]),
    ):
        assert login(Client(), auditor).get(url).status_code == 404
        assert Client().get(url).status_code == 302
        assert admin_browser().get(url).status_code == 200
    for url in (
        reverse("compliance:destination_delete", args=[row.pk]),
        reverse("compliance:destination_test", args=[row.pk]),
    ):
        assert login(Client(), auditor).post(url).status_code == 404
    assert SyslogDestination.objects.filter(pk=row.pk).exists()


def test_adding_a_destination_is_audited_and_starts_at_the_newest_event_unless_asked_for_all():
    browser = admin_browser()
    head = services.head_seq()

    response = browser.post(reverse("compliance:destination_create"), FORM)

    assert response.status_code == 302
    made = SyslogDestination.objects.get(name="qradar")
    assert made.cursor == head
    event = AuditEvent.objects.get(action="compliance.syslog_create")
    assert event.actor_name == "sec-admin" and event.object_name == "qradar" and event.detail["port"] == 6514
    browser.post(reverse("compliance:destination_create"), {**FORM, "name": "splunk", "from_start": "on"})
    assert SyslogDestination.objects.get(name="splunk").cursor == 0


def test_editing_keeps_the_cursor_and_deleting_is_audited():
    browser = admin_browser()
    row = SyslogDestination.objects.create(name="siem", host="127.0.0.1", port=6514, cursor=41)

    browser.post(reverse("compliance:destination_edit", args=[row.pk]), {**FORM, "name": "siem", "port": "7514"})
    row.refresh_from_db()
    assert (row.port, row.cursor) == (7514, 41)
    assert AuditEvent.objects.get(action="compliance.syslog_update").detail["changed"] == ["host", "port"]

    browser.post(reverse("compliance:destination_delete", args=[row.pk]))
    assert not SyslogDestination.objects.filter(pk=row.pk).exists()
    assert AuditEvent.objects.filter(action="compliance.syslog_delete", object_name="siem").exists()


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("host", "https://siem.bank.example", "host name or an IP address"),
        ("host", "169.254.169.254", "link-local or cloud metadata"),
        ("port", "70000", "65535"),
        ("ca_pem", "not a certificate", "not a PEM certificate"),
        ("name", "Bad Name", "lower-case letters"),
        ("server_name", "bad name!", "as the certificate spells it"),
    ],
)
def test_the_form_refuses_what_cannot_work_with_a_sentence_and_saves_nothing(field, value, words):
    response = admin_browser().post(reverse("compliance:destination_create"), {**FORM, field: value})

    assert response.status_code == 400
    assert words in response.content.decode()
    assert not SyslogDestination.objects.exists()
    assert not AuditEvent.objects.filter(action="compliance.syslog_create").exists()


def test_a_ca_for_plain_tcp_is_refused():
    response = admin_browser().post(
        reverse("compliance:destination_create"), {**FORM, "transport": "tcp", "server_name": "siem.bank.example"}
    )
    assert response.status_code == 400 and "apply to TLS only" in response.content.decode()


def test_saving_asks_for_the_password_again():
    browser = login(Client(), AdminFactory())  # signed in, but the password proof is stale
    response = browser.post(reverse("compliance:destination_create"), FORM)
    assert response.status_code == 302
    assert response["Location"].startswith(reauth_url("/")[: reauth_url("/").index("?")])
    assert not SyslogDestination.objects.exists()


def test_the_list_shows_the_lag_and_the_error_in_the_readers_language():
    row = SyslogDestination.objects.create(
        name="siem",
        host="127.0.0.1",
        port=6514,
        cursor=0,
        last_error=deferred.text(
            deferred.N_("The syslog receiver %(address)s could not be reached: %(error)s"),
            address="127.0.0.1:6514",
            error="Connection refused",
        ),
    )
    SyslogDestination.objects.filter(pk=row.pk).update(failing_since="2026-12-05T10:00:00Z")
    english = admin_browser().get(reverse("compliance:destination_list")).content.decode()
    chinese = (
        admin_browser().get(reverse("compliance:destination_list"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    )

    assert "could not be reached" in english and 'data-testid="destination-lag"' in english
    assert "could not be reached" not in chinese and "127.0.0.1:6514" in chinese


def test_a_change_in_django_admin_is_audited_and_cannot_move_the_cursor():
    row = SyslogDestination.objects.create(name="siem", host="127.0.0.1", port=6514, cursor=7)
    browser = login(Client(), AdminFactory(username="root-admin"), recent_auth=True)
    url = reverse("admin:compliance_syslogdestination_change", args=[row.pk])

    response = browser.post(
        url,
        {
            "name": "siem",
            "host": "127.0.0.2",
            "port": "6514",
            "transport": "tls",
            "format": "json",
            "enabled": "on",
            "ca_pem": "",
            "server_name": "",
            "cursor": "0",
        },
    )

    assert response.status_code == 302, response.content[:800]
    row.refresh_from_db()
    assert (row.host, row.cursor) == ("127.0.0.2", 7)
    assert AuditEvent.objects.filter(
        action="admin.compliance.syslogdestination.change", actor_name="root-admin"
    ).exists()
