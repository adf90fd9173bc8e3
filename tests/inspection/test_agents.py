"""The door to host agents (apps/inspection/agents.py) against the real agent binary (tests/plugins/hostagent.py):
registration pins the certificate (trust on first use, or a fingerprint typed from the agent's log), reports are
fetched with the token, and a wrong fingerprint, a wrong token, a silent agent or an answer that is not a report is
refused with a sentence. A TLS impostor shows the token is never sent to a peer that is not the pinned one."""

from __future__ import annotations

import json
import logging

import pytest

from apps.core import crypto
from apps.core.deferred import render
from apps.core.models import AuditEvent
from apps.inspection import agents
from apps.inspection.models import HostAgent
from tests.factories import UserFactory


@pytest.fixture
def secrets_logged(caplog):
    """Every log record of the test, at every level, for asserting what never appears in them."""
    caplog.set_level(logging.DEBUG)
    return caplog


def events(action: str):
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def stored(url: str, token: str, fingerprint: str, name: str = "impostor") -> HostAgent:
    """A registered agent row as register_agent leaves it (for peers that would not pass registration)."""
    return HostAgent.objects.create(name=name, url=url, token_encrypted=crypto.encrypt(token), fingerprint=fingerprint)


def assert_token_nowhere(token: str, caplog, *more: str) -> None:
    assert token not in caplog.text
    for event in AuditEvent.objects.all():
        assert token not in json.dumps(event.detail) and token not in event.object_name
    for agent in HostAgent.objects.all():
        assert token not in agent.last_error and token not in agent.token_encrypted
    for text in more:
        assert token not in text


def test_registration_pins_the_certificate_presented_now_and_fetches_reports(
    db, host_agent, admin_user, secrets_logged
):
    logged = agents.normalize_fingerprint(host_agent.fingerprint)
    assert agents.read_fingerprint(host_agent.url) == logged and len(logged) == 95

    agent = agents.register_agent(
        actor=admin_user, name="node-a", url=host_agent.url, token=host_agent.token, node_name="node-a"
    )

    agent.refresh_from_db()
    assert agent.fingerprint == logged and agent.agent_version == "0.1.0" and agent.last_seen_at is not None
    assert agent.token_encrypted != host_agent.token and crypto.decrypt(agent.token_encrypted) == host_agent.token
    [event] = events("inspection.agent.register")
    assert event.result == AuditEvent.Result.SUCCESS and event.actor_id == admin_user.pk
    assert event.detail == {
        "url": host_agent.url,
        "fingerprint": logged,
        "pinned": "first use",
        "node": "node-a",
        "version": "0.1.0",
    }

    host_agent.host.memory(total_mib=2048, available_mib=512)
    report = agents.fetch_report(agent)
    assert report["host"]["hostname"] == "node-a" and report["agent_version"] == "0.1.0"
    assert report["collectors"]["memory"]["facts"]["total_bytes"] == 2048 * 2**20
    assert report["collectors"]["memory"]["facts"]["used_ratio"] == 0.75
    assert set(report["collectors"]) == {
        "cpu",
        "load",
        "memory",
        "disk",
        "diskio",
        "network",
        "clock",
        "sysctl",
        "cron",
        "files",
        "zombies",
        "certs",
    }
    assert_token_nowhere(host_agent.token, secrets_logged, host_agent.log())


@pytest.mark.parametrize(
    "spelling",
    [
        lambda fp: fp,  # sha256:AA:BB:... as the agent logs it
        lambda fp: fp.lower(),
        lambda fp: fp.removeprefix("sha256:").replace(":", ""),
        lambda fp: "SHA256 Fingerprint=" + fp.removeprefix("sha256:"),  # openssl x509 -fingerprint -sha256
    ],
)
def test_a_fingerprint_typed_from_the_agents_log_is_pinned_in_any_usual_spelling(db, host_agent, spelling):
    typed = spelling(host_agent.fingerprint)
    agent = agents.register_agent(
        actor=None, name="node-a", url=host_agent.url, token=host_agent.token, fingerprint=typed
    )
    assert agent.fingerprint == host_agent.fingerprint.removeprefix("sha256:")
    assert events("inspection.agent.register")[0].detail["pinned"] == "given"


def test_a_wrong_fingerprint_is_refused_before_the_token_is_sent(db, tls_impostor, host_agent, secrets_logged):
    token = "t0ken-for-the-real-agent-only-1234"
    with pytest.raises(agents.WrongCertificate) as refused:
        agents.register_agent(
            actor=None, name="node-a", url=tls_impostor.url, token=token, fingerprint=host_agent.fingerprint
        )
    sentence = str(refused.value)
    assert f"presented a certificate with fingerprint {tls_impostor.fingerprint}" in sentence
    assert f"not the pinned {host_agent.fingerprint.removeprefix('sha256:')}" in sentence
    assert "so Kubemate did not send its token" in sentence
    # The impostor completed a TLS handshake, and then received nothing: no request, no token.
    assert tls_impostor.accepted == 1 and tls_impostor.seen == []
    assert not HostAgent.objects.exists()
    [event] = events("inspection.agent.register")
    assert event.result == AuditEvent.Result.FAILURE and event.detail == {
        "url": tls_impostor.url,
        "error": "WrongCertificate",
    }
    assert_token_nowhere(token, secrets_logged)


def test_an_agent_restarted_with_a_new_certificate_is_refused_until_its_new_fingerprint_is_pinned(db, host_agent):
    agent = agents.register_agent(actor=None, name="node-a", url=host_agent.url, token=host_agent.token)
    first = agent.fingerprint
    host_agent.stop()
    host_agent.start()
    assert agents.normalize_fingerprint(host_agent.fingerprint) != first

    with pytest.raises(agents.WrongCertificate):
        agents.fetch_report(agent)
    agent.refresh_from_db()
    assert "presented a certificate with fingerprint" in render(agent.last_error)
    assert "request refused" not in host_agent.log()  # the agent never saw the token

    agents.update_agent(actor=None, agent=agent, fingerprint="")  # trust the certificate presented now
    agent.refresh_from_db()
    assert agent.fingerprint == agents.normalize_fingerprint(host_agent.fingerprint) and agent.last_error == ""
    assert agents.fetch_report(agent)["agent_version"] == "0.1.0"
    [event] = events("inspection.agent.update")
    assert event.detail == {"fingerprint": agent.fingerprint}


def test_a_wrong_token_is_refused_with_a_sentence_and_never_logged(db, host_agent, secrets_logged):
    wrong = "not-the-agents-token-0123456789"
    with pytest.raises(agents.TokenRefused) as refused:
        agents.register_agent(actor=None, name="node-a", url=host_agent.url, token=wrong)
    assert "refused Kubemate's token (HTTP 401)" in str(refused.value)
    assert not HostAgent.objects.exists()
    assert events("inspection.agent.register")[0].detail["error"] == "TokenRefused"
    assert "request refused: bad or missing token" in host_agent.log()

    # A registered agent whose token changed since (the stored one is now wrong).
    agent = agents.register_agent(actor=None, name="node-a", url=host_agent.url, token=host_agent.token)
    HostAgent.objects.filter(pk=agent.pk).update(token_encrypted=crypto.encrypt(wrong))
    agent.refresh_from_db()
    with pytest.raises(agents.TokenRefused):
        agents.fetch_report(agent)
    agent.refresh_from_db()
    assert render(agent.last_error) == (
        f"Host agent node-a at {host_agent.url} refused Kubemate's token (HTTP 401): give the token from the "
        "agent's token file again."
    )
    for token in (wrong, host_agent.token):
        assert_token_nowhere(token, secrets_logged, host_agent.log())


def test_an_agent_that_does_not_answer_is_unreachable_and_nothing_is_registered(db, host_agent):
    agent = agents.register_agent(actor=None, name="node-a", url=host_agent.url, token=host_agent.token)
    host_agent.stop()
    with pytest.raises(agents.Unreachable) as silent:
        agents.fetch_report(agent)
    assert str(silent.value) == f"Host agent node-a at {host_agent.url} could not be reached: Connection refused."
    agent.refresh_from_db()
    assert render(agent.last_error) == str(silent.value)

    with pytest.raises(agents.Unreachable):
        agents.register_agent(actor=None, name="node-b", url=host_agent.url, token=host_agent.token)
    assert list(HostAgent.objects.values_list("name", flat=True)) == ["node-a"]


def test_a_registered_agent_without_a_pin_is_never_sent_the_token(db, tls_impostor):
    agent = stored(tls_impostor.url, "a-token-for-nobody-0123456789", fingerprint="")
    with pytest.raises(agents.AgentError) as refused:
        agents.fetch_report(agent)
    assert "No certificate fingerprint is pinned for host agent impostor" in str(refused.value)
    assert tls_impostor.accepted == 0


@pytest.mark.parametrize(
    ("status", "body", "sentence"),
    [
        (500, b"{}", "answered HTTP 500."),
        (302, b"", "answered HTTP 302."),
        (200, b"hello", "answered something that is not a report: The JSON is not valid at line 1, column 1"),
        (200, b"[" * 100 + b"]" * 100, "answered something that is not a report: The JSON is nested more than 12"),
        (200, b'{"host": {}}', "answered JSON that is not an agent's report."),
        (200, b'{"collectors": [], "agent_version": "1"}', "answered JSON that is not an agent's report."),
        (200, b"x" * (agents.MAX_REPORT_BYTES + 1), "answered with more than 4,194,304 bytes; Kubemate reads no more."),
    ],
)
def test_answers_that_are_not_reports_are_refused_with_sentences(db, tls_impostor, status, body, sentence):
    token = "a-token-for-the-pinned-peer-0123"
    tls_impostor.status, tls_impostor.body = status, body
    agent = stored(tls_impostor.url, token, tls_impostor.fingerprint)
    with pytest.raises(agents.BadAnswer) as bad:
        agents.fetch_report(agent)
    assert str(bad.value).startswith(f"Host agent impostor at {tls_impostor.url} ") and sentence in str(bad.value)
    assert tls_impostor.seen == [("/report", f"Bearer {token}")]  # pinned: this peer may be sent the token


def test_an_answer_streamed_without_a_length_is_cut_at_the_limit(db, tls_impostor):
    tls_impostor.body = lambda: (b"x" * 65536 for _ in range(200))  # 12.5 MiB, no Content-Length
    agent = stored(tls_impostor.url, "a-token-for-the-pinned-peer-0123", tls_impostor.fingerprint)
    with pytest.raises(agents.BadAnswer) as bad:
        agents.fetch_report(agent)
    assert "answered with more than 4,194,304 bytes" in str(bad.value)


def test_a_trickling_answer_is_given_up_at_the_deadline(db, tls_impostor, monkeypatch):
    monkeypatch.setattr(agents, "ANSWER_SECONDS", 1)

    def trickle():
        import time

        for _ in range(50):
            yield b" "
            time.sleep(0.1)

    tls_impostor.body = trickle
    agent = stored(tls_impostor.url, "a-token-for-the-pinned-peer-0123", tls_impostor.fingerprint)
    with pytest.raises(agents.BadAnswer) as late:
        agents.fetch_report(agent)
    assert str(late.value) == f"Host agent impostor at {tls_impostor.url} did not send its report within 1 seconds."


def test_a_401_from_the_pinned_peer_is_a_refused_token(db, tls_impostor):
    tls_impostor.status = 401
    agent = stored(tls_impostor.url, "a-token-for-the-pinned-peer-0123", tls_impostor.fingerprint)
    with pytest.raises(agents.TokenRefused):
        agents.fetch_report(agent)


@pytest.mark.parametrize(
    ("changes", "sentence"),
    [
        ({"url": "http://127.0.0.1:9443"}, "The address must start with https."),
        ({"url": "https://user:pw@127.0.0.1:9443"}, "Do not put a user name or password in the address."),
        ({"url": "https://169.254.169.254:9443"}, "is a link-local or cloud metadata address"),
        ({"url": "https://metadata.google.internal"}, "is a cloud metadata service"),
        ({"token": "short"}, "The token must be 16 to 4096 printable characters without spaces"),
        ({"token": "has a space in it 0123456789"}, "The token must be 16 to 4096 printable characters"),
        ({"fingerprint": "AA:BB"}, "The certificate fingerprint must be a SHA-256 fingerprint"),
    ],
)
def test_registration_refuses_what_cannot_work_before_connecting(db, changes, sentence):
    given = {"name": "node-a", "url": "https://127.0.0.1:9443", "token": "a-token-long-enough-0123", **changes}
    with pytest.raises(agents.Refused) as refused:
        agents.register_agent(actor=None, **given)
    assert sentence in str(refused.value)
    assert not HostAgent.objects.exists() and not AuditEvent.objects.filter(action__startswith="inspection.").exists()


def test_names_are_unique_and_people_without_the_capability_are_refused(db, host_agent):
    agents.register_agent(actor=None, name="node-a", url=host_agent.url, token=host_agent.token)
    with pytest.raises(agents.Refused) as taken:
        agents.register_agent(actor=None, name="node-a", url=host_agent.url, token=host_agent.token)
    assert str(taken.value) == "A host agent named node-a is already registered."

    nobody = UserFactory()
    with pytest.raises(agents.Refused) as refused:
        agents.register_agent(actor=nobody, name="node-b", url=host_agent.url, token=host_agent.token)
    assert str(refused.value) == "You may not register or change host agents."
    with pytest.raises(agents.Refused):
        agents.delete_agent(actor=nobody, agent=HostAgent.objects.get())
    assert HostAgent.objects.count() == 1


def test_changes_and_removal_are_audited_and_a_new_token_is_tested_first(db, host_agent, admin_user, secrets_logged):
    agent = agents.register_agent(actor=admin_user, name="node-a", url=host_agent.url, token=host_agent.token)

    agents.update_agent(actor=admin_user, agent=agent, name="node-a1", node_name="worker-1", enabled=False)
    agent.refresh_from_db()
    assert (agent.name, agent.node_name, agent.enabled) == ("node-a1", "worker-1", False)
    with pytest.raises(agents.TokenRefused):
        agents.update_agent(actor=admin_user, agent=agent, token="another-token-0123456789")
    agent.refresh_from_db()
    assert crypto.decrypt(agent.token_encrypted) == host_agent.token  # the refused token was not stored
    agents.update_agent(actor=admin_user, agent=agent, token=host_agent.token)  # given again: tested, stored anew

    updates = events("inspection.agent.update")
    assert [e.result for e in updates] == [
        AuditEvent.Result.SUCCESS,
        AuditEvent.Result.FAILURE,
        AuditEvent.Result.SUCCESS,
    ]
    assert updates[0].detail == {"name": "node-a1", "node_name": "worker-1", "enabled": False}
    assert updates[2].detail == {"token": "replaced"}

    agents.delete_agent(actor=admin_user, agent=agent)
    assert not HostAgent.objects.exists()
    [deleted] = events("inspection.agent.delete")
    assert deleted.object_name == "node-a1" and deleted.detail["url"] == host_agent.url
    assert_token_nowhere(host_agent.token, secrets_logged, host_agent.log())
