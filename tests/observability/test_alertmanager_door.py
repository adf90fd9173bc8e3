"""The door to Alertmanager (apps/observability/alertmanager.py) against Debian's real Alertmanager: alert groups as
its routes group them, silences created, read and expired, its refusals, credentials; and against a small hostile
server for what a real one does not answer: too large, malformed, too slow."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.observability import alertmanager as am
from apps.observability.alertmanager import Matcher
from apps.observability.endpoints import Endpoint
from tests.helpers import unique


def endpoint_of(server) -> Endpoint:
    return Endpoint(url=server.url)


def test_alerts_come_grouped_as_the_route_groups_them_with_their_state(alertmanager):
    namespace = unique("ns")
    alertmanager.post_alert(
        {"alertname": "PodCrashLooping", "namespace": namespace, "pod": "pay-1", "severity": "warning"},
        {"summary": "pay-1 restarts", "description": "5 restarts in 10 minutes"},
    )
    alertmanager.post_alert({"alertname": "PodCrashLooping", "namespace": namespace, "pod": "pay-2"})
    alertmanager.post_alert({"alertname": "DiskFull", "namespace": namespace, "severity": "critical"})

    groups = am.groups(endpoint_of(alertmanager))

    mine = sorted((g for g in groups if g.labels.get("namespace") == namespace), key=lambda g: g.labels["alertname"])
    assert [(g.labels, g.receiver, len(g.alerts)) for g in mine] == [
        ({"alertname": "DiskFull", "namespace": namespace}, "ops", 1),
        ({"alertname": "PodCrashLooping", "namespace": namespace}, "ops", 2),
    ]
    crash = next(a for a in mine[1].alerts if a.labels["pod"] == "pay-1")
    assert (crash.name, crash.severity, crash.namespace, crash.summary, crash.description) == (
        "PodCrashLooping",
        "warning",
        namespace,
        "pay-1 restarts",
        "5 restarts in 10 minutes",
    )
    assert crash.state in ("active", "unprocessed") and not crash.silenced and crash.receivers == ("ops",)
    assert abs((timezone.now() - crash.starts_at).total_seconds()) < 60 and len(crash.fingerprint) == 16


def test_a_silence_is_created_as_its_author_read_back_matches_and_expires(alertmanager):
    endpoint = endpoint_of(alertmanager)
    namespace = unique("ns")
    alertmanager.post_alert({"alertname": "QueueBacklog", "namespace": namespace, "severity": "warning"})
    matchers = [Matcher("alertname", "QueueBacklog"), Matcher.of("namespace", "=~", f"{namespace}|none")]
    now = timezone.now()

    silence_id = am.create_silence(
        endpoint,
        matchers=matchers,
        starts_at=now,
        ends_at=now + timedelta(hours=2),
        created_by="li.wei",
        comment="CHG-42 queue migration",
    )

    silence = am.silence(endpoint, silence_id)
    assert (silence.state, silence.created_by, silence.comment, silence.matchers) == (
        "active",
        "li.wei",
        "CHG-42 queue migration",
        tuple(matchers),
    )
    assert abs((silence.ends_at - now - timedelta(hours=2)).total_seconds()) < 2
    assert [m.operator for m in silence.matchers] == ["=", "=~"]
    assert silence_id in [s.id for s in am.silences(endpoint)]
    silenced = alertmanager.wait_for_alert(lambda a: a["status"]["silencedBy"] == [silence_id])
    assert silenced["labels"]["namespace"] == namespace
    assert next(a for a in am.alerts(endpoint) if a.namespace == namespace).state == "suppressed"

    am.expire_silence(endpoint, silence_id)

    assert am.silence(endpoint, silence_id).state == "expired"
    assert next(a for a in am.alerts(endpoint) if a.namespace == namespace).state != "suppressed"


def test_an_unknown_silence_and_a_refused_silence_are_sentences(alertmanager):
    endpoint = endpoint_of(alertmanager)
    missing = "00000000-0000-4000-8000-000000000000"
    now = timezone.now()

    with pytest.raises(am.Refused) as unknown:
        am.silence(endpoint, missing)
    with pytest.raises(am.Refused) as not_an_id:
        am.expire_silence(endpoint, "../../status")
    with pytest.raises(am.Refused) as refused:  # a silence whose matchers match every alert
        am.create_silence(
            endpoint,
            matchers=[Matcher.of("alertname", "=~", ".*")],
            starts_at=now,
            ends_at=now + timedelta(hours=1),
            created_by="li.wei",
            comment="everything",
        )

    assert str(unknown.value) == f"Alertmanager at {alertmanager.url} has no silence {missing}."
    assert str(not_an_id.value) == f"Alertmanager at {alertmanager.url} has no silence ../../status."
    assert str(refused.value).startswith(f"Alertmanager at {alertmanager.url} refused the request (HTTP 400): ")
    assert "matcher" in str(refused.value)
    assert [s for s in am.silences(endpoint) if s.comment == "everything"] == []


def test_the_status_leaves_out_the_configuration(alertmanager):
    status = am.status(endpoint_of(alertmanager))

    assert status.version.startswith("0.25")
    assert status.cluster_status == "disabled"  # gossip off
    assert "smtp" not in repr(status) and not hasattr(status, "config")
    assert am.probe(endpoint_of(alertmanager)) is None


def test_no_address_and_no_answer_are_sentences_without_the_password():
    with pytest.raises(am.NotConfigured, match=r"^No Alertmanager URL is set for this cluster\.$"):
        am.groups(Endpoint(url=""))
    with pytest.raises(am.Unreachable) as unreachable:
        am.silences(Endpoint(url="http://127.0.0.1:9/alertmanager", username="ops", password="s3cret"))

    assert str(unreachable.value) == "Alertmanager at http://127.0.0.1:9/alertmanager could not be reached."
    assert am.probe(Endpoint(url="http://127.0.0.1:9")) == "Alertmanager at http://127.0.0.1:9 could not be reached."


def test_credentials_open_an_alertmanager_behind_basic_auth_and_refusals_name_no_secret(alertmanager_with_password):
    url = alertmanager_with_password

    assert am.silences(Endpoint(url=url, username="ops", password="s3cret")) == []
    with pytest.raises(am.Unreachable) as wrong:
        am.silences(Endpoint(url=url, username="ops", password="wrong-s3cret"))
    with pytest.raises(am.Unreachable) as none:
        am.silences(Endpoint(url=url))

    assert str(wrong.value) == (
        f"Alertmanager at {url} refused Kubemate's credentials (HTTP 401); check them in the cluster's settings."
    )
    assert (
        str(none.value) == f"Alertmanager at {url} asks for credentials (HTTP 401); set them in the cluster's settings."
    )


# --- a hostile server: what a real Alertmanager does not answer ----------------------------------------------------


@pytest.fixture
def hostile(hostile_alertmanager):
    return hostile_alertmanager


def test_an_answer_larger_than_the_cap_is_refused_before_it_is_parsed(hostile):
    def endless():
        yield b"["
        for _ in range(10 * 1024):  # 10 MiB of alerts, and no end
            yield b'{"labels":{"alertname":"' + b"x" * 1000 + b'"}},'

    hostile.body = endless

    with pytest.raises(am.Unreadable) as too_large:
        am.alerts(Endpoint(url=hostile.url, token="t0ken"))

    assert str(too_large.value) == (
        f"Alertmanager at {hostile.url} answered more than 8 MiB; Kubemate reads no more than that."
    )
    assert hostile.seen[0][0].startswith("/api/v2/alerts?") and hostile.seen[0][1] == "Bearer t0ken"
    assert "t0ken" not in str(too_large.value)


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"<html>Grafana</html>", "JSON"),
        (b'{"status": "success", "data": []}', "a list of alert groups"),
        (b'[{"labels": {}, "alerts": [{"labels": {"a": 1}}]}]', "alert labels"),
        (b'[{"labels": {}, "alerts": [{"status": {"state": "exploded"}}]}]', "alert state"),
        (b'[{"labels": {}, "alerts": [{"startsAt": "yesterday"}]}]', "alert startsAt"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON"),
    ],
)
def test_a_malformed_answer_is_a_sentence(hostile, body, what):
    hostile.body = body

    with pytest.raises(am.Unreadable) as unreadable:
        am.groups(Endpoint(url=hostile.url))

    assert str(unreadable.value) == (
        f"Alertmanager at {hostile.url} gave an answer Kubemate cannot read ({what}); check that the address is an "
        "Alertmanager with API v2."
    )


def test_an_address_without_api_v2_and_a_failing_server_are_sentences(hostile):
    hostile.status, hostile.body = 404, b"404 page not found"
    with pytest.raises(am.Refused) as not_found:
        am.silences(Endpoint(url=hostile.url + "/monitoring"))
    hostile.status, hostile.body = (
        503,
        json.dumps({"message": "overloaded, try later " + "x" * 500}).encode(),
    )
    with pytest.raises(am.Refused) as failing:
        am.silences(Endpoint(url=hostile.url))

    assert str(not_found.value) == (
        f"Alertmanager at {hostile.url}/monitoring has no API v2 at this address (HTTP 404); check the address in the "
        "cluster's settings (it may need a path, such as /alertmanager)."
    )
    assert hostile.seen[0][0] == "/monitoring/api/v2/silences"
    assert str(failing.value).startswith(
        f"Alertmanager at {hostile.url} refused the request (HTTP 503): overloaded, try later xxx"
    )
    assert len(str(failing.value)) < 450


def test_a_slow_answer_is_a_sentence_after_the_timeout(hostile):
    hostile.delay = 3

    started = time.monotonic()
    with pytest.raises(am.Unreachable) as slow:
        am.groups(Endpoint(url=hostile.url), timeout=1)

    assert time.monotonic() - started < 2.5
    assert str(slow.value) == f"Alertmanager at {hostile.url} did not answer within 1 seconds."


def test_an_answer_that_trickles_in_is_cut_at_the_deadline(hostile):
    def trickle():
        yield b"["
        for _ in range(40):
            time.sleep(0.2)
            yield b" "

    hostile.body = trickle

    started = time.monotonic()
    with pytest.raises(am.Unreachable) as slow:
        am.groups(Endpoint(url=hostile.url), timeout=1)

    assert time.monotonic() - started < 2.5
    assert str(slow.value) == f"Alertmanager at {hostile.url} did not answer within 1 seconds."
