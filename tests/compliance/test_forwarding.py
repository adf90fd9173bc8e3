"""Audit forwarding to the SIEM through a real rsyslog (Debian's rsyslogd with its GnuTLS driver, a test CA).

Every audit event of a scripted console session reaches rsyslog over TLS, in order, each with the chain position
the SIEM checks completeness by; rsyslog stopped for a minute while the session goes on loses nothing and keeps the
order when it is back; UDP and CEF; a receiver whose certificate does not match is refused with a sentence and
the cursor does not move.
"""

from __future__ import annotations

import itertools
import json
import re
import time

import pytest
from django.test import Client
from django.urls import reverse

from apps.compliance.forwarding import services
from apps.compliance.models import SyslogDestination
from apps.core import audit
from apps.core.locks import redis_lock
from apps.core.models import AuditEvent
from tests.compliance.rsyslog import SERVER_NAME
from tests.factories import AdminFactory
from tests.helpers import login

pytestmark = pytest.mark.django_db
OUTAGE_SECONDS = 60


def destination(rsyslog, **overrides) -> SyslogDestination:
    values = {
        "name": "siem",
        "host": "127.0.0.1",
        "port": rsyslog.tls_port,
        "transport": "tls",
        "ca_pem": rsyslog.tls.ca_pem,
        "server_name": SERVER_NAME,
    }
    values.update(overrides)
    return services.create(AdminFactory(), SyslogDestination(**values), from_start=False)


def session(admin_client, prefix: str, count: int = 3) -> None:
    """A person's changes in the console, each an audit event: users created and one's details changed."""
    for n in range(count):
        response = admin_client.post(
            reverse("accounts:user_create"),
            {"username": f"{prefix}{n}", "email": f"{prefix}{n}@bank.example", "first_name": "Ann", "last_name": "Li"},
        )
        assert response.status_code in (200, 302), response.content[:500]


def messages_by_seq(rsyslog) -> dict[int, dict]:
    found = {}
    for text in rsyslog.received():
        body = text.split("] ", 1)[1]
        data = json.loads(body)
        found.setdefault(data["seq"], data)
    return found


def test_every_event_of_a_session_reaches_rsyslog_over_tls_in_order_with_its_chain_position(rsyslog):
    siem = destination(rsyslog)
    start = siem.cursor
    admin = login(Client(), AdminFactory(username="maker"), recent_auth=True)
    session(admin, "ann")
    audit.record(actor=None, action="test.reason", detail={"text": 'quote " bracket ] slash \\ 中文'}, reason="CHG-1")

    assert services.forward_all() > 0
    events = list(AuditEvent.objects.filter(seq__gt=start).order_by("seq"))
    rsyslog.wait_for(lambda: len(rsyslog.received("tls")) >= len(events))

    assert rsyslog.seqs("tls") == [event.seq for event in events]
    received = messages_by_seq(rsyslog)
    for event in events:
        message = received[event.seq]
        assert (message["hash"], message["prev_hash"], message["action"]) == (event.hash, event.prev_hash, event.action)
        assert message["actor"] == event.actor_name and message["detail"] == event.detail
    # The chain links: each message names the hash of the one before it, as the SIEM checks.
    assert all(received[b.seq]["prev_hash"] == received[a.seq]["hash"] for a, b in itertools.pairwise(events))
    line = next(text for text in rsyslog.received("tls") if "test.reason" in text)
    assert re.match(r"<110>1 \S+ \S+ kubemate - test\.reason \[kubemate@32473 seq=\"\d+\" hash=\"[0-9a-f]{64}\"", line)
    assert json.loads(line.split("] ", 1)[1])["reason"] == "CHG-1"
    siem.refresh_from_db()
    assert siem.cursor == events[-1].seq and siem.failing_since is None and siem.last_error == ""


def test_rsyslog_stopped_for_a_minute_loses_nothing_and_keeps_the_order(rsyslog):
    siem = destination(rsyslog)
    start = siem.cursor
    admin = login(Client(), AdminFactory(username="maker"), recent_auth=True)
    session(admin, "before")
    services.forward_all()
    rsyslog.wait_for(lambda: rsyslog.seqs("tls") and rsyslog.seqs("tls")[-1] == AuditEvent.objects.latest("seq").seq)

    rsyslog.stop()
    stopped = time.monotonic()
    # The console goes on: events are written while beat's passes (every 5 s) find the receiver down.
    n = 0
    while time.monotonic() - stopped < OUTAGE_SECONDS:
        audit.record(actor=None, action="test.during_outage", detail={"n": n})
        n += 1
        assert services.forward_all() == 0
        time.sleep(5)
    siem.refresh_from_db()
    assert siem.failing_since is not None
    assert "could not be reached" in siem.last_error_text
    waiting = services.lag(siem)
    assert waiting == n

    rsyslog.start()
    session(admin, "after")
    services.forward_all()
    events = list(AuditEvent.objects.filter(seq__gt=start).order_by("seq").values_list("seq", flat=True))
    rsyslog.wait_for(lambda: set(events) <= set(rsyslog.seqs("tls")))

    received = rsyslog.seqs("tls")
    # Nothing lost, and in order: a message is sent again only after an unconfirmed batch, never out of turn.
    first_seen = list(dict.fromkeys(received))
    assert first_seen == events
    assert received == sorted(received)
    siem.refresh_from_db()
    assert siem.cursor == events[-1] and siem.failing_since is None and services.lag(siem) == 0


def test_udp_in_cef_carries_the_chain_position_escaped(rsyslog):
    siem = destination(
        rsyslog, name="siem-udp", transport="udp", port=rsyslog.udp_port, ca_pem="", server_name="", format="cef"
    )
    event = audit.record(actor=None, action="test.cef", detail={"k": "a=b|c\\d"}, reason="line one\nline two")

    services.forward(siem)
    rsyslog.wait_for(lambda: any("test.cef" in text for text in rsyslog.received("udp")))

    line = next(text for text in rsyslog.received("udp") if "test.cef" in text)
    cef = line.split("] ", 1)[1]
    assert cef.startswith("CEF:0|Kubemate|Kubemate Console|")
    assert f"cn1={event.seq}" in cef and f"cs5={event.hash}" in cef and f"cs6={event.prev_hash}" in cef
    # The detail as JSON (its backslash doubled), then CEF's escapes: "=" and every backslash.
    assert r'msg={"k":"a\=b|c\\\\d"}' in cef
    assert "cs4=line one\\nline two" in cef


def test_a_certificate_for_another_name_is_refused_with_a_sentence_and_nothing_moves(rsyslog):
    siem = destination(rsyslog, server_name="other.bank.test")
    audit.record(actor=None, action="test.refused")

    assert services.forward(siem) == 0

    before = siem.cursor
    siem.refresh_from_db()
    assert siem.cursor == before and siem.failing_since is not None
    assert "certificate was refused" in siem.last_error_text
    assert rsyslog.received() == []
    # The sentence is stored deferred and read in the reader's language.
    page = login(Client(), AdminFactory(), recent_auth=True).get(
        reverse("compliance:destination_list"), HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    assert 'data-testid="destination-failing"' in page.content.decode()
    assert "certificate was refused" not in page.content.decode()


def test_a_second_pass_while_one_is_sending_sends_nothing(rsyslog):
    """One sender per receiver keeps the order: a pass that finds the receiver's lock taken (another worker is
    sending) leaves it alone, and the next pass sends everything once."""
    siem = destination(rsyslog)
    start = siem.cursor
    for n in range(450):
        audit.record(actor=None, action="test.bulk", detail={"n": n})

    with redis_lock(f"syslog-forward:{siem.pk}"):  # as the other worker holds it while it sends
        assert services.forward(siem) == 0
    sent = services.forward(siem)
    expected = list(AuditEvent.objects.filter(seq__gt=start).order_by("seq").values_list("seq", flat=True))

    assert sent == len(expected) == 451  # the destination's own creation, then the 450, in three batches
    rsyslog.wait_for(lambda: len(rsyslog.seqs("tls")) >= 451)
    assert rsyslog.seqs("tls") == expected
