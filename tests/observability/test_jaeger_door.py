"""The Jaeger door (apps/observability/jaeger.py) against a real Jaeger v2 (tests/plugins/jaeger.py), and against a
server that is not one (too large, malformed, slow, refusing): typed traces with their tree, searches by service,
operation, tags and duration, the service graph, and every failure as a sentence."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.observability import jaeger as door
from apps.observability.endpoints import Endpoint
from tests.helpers import unique
from tests.plugins.alertmanager import Hostile
from tests.plugins.jaeger import send_traces


def renamed(spans, tag: str):
    """The spans with every service made unique to this test (Jaeger's memory keeps the whole session's)."""
    return [replace(s, service=f"{s.service}-{tag}") for s in spans]


def query(service: str, **kwargs) -> door.Query:
    now = timezone.now()
    return door.Query(service=service, start=now - timedelta(minutes=15), end=now + timedelta(seconds=5), **kwargs)


def test_a_checkout_trace_is_typed_with_its_tree_processes_and_durations(jaeger):
    tag = unique("t")[-6:]
    trace_id = jaeger.send(renamed(send_traces().checkout("payments"), tag))
    jaeger.wait_for_trace(trace_id, spans=4)
    endpoint = Endpoint(url=jaeger.url)

    trace = door.trace(endpoint, trace_id)
    assert trace.trace_id == trace_id and len(trace.spans) == 4 and trace.dropped == 0
    by_name = {s.operation: s for s in trace.spans}
    root, orders, cart, save = (by_name[n] for n in ("GET /checkout", "POST /orders", "GET cart", "INSERT orders"))
    assert trace.root == root and root.parent_id == ""
    assert orders.parent_id == root.span_id and cart.parent_id == orders.span_id and save.parent_id == orders.span_id
    assert (root.duration_us, orders.duration_us, cart.duration_us) == (200_000, 175_000, 150_000)
    assert cart.start_us - root.start_us == 30_000 and trace.duration_us == 200_000
    assert cart.service == f"redis-{tag}" and cart.process.namespace == "payments"
    assert cart.process.pod == f"redis-{tag}-7d9f8b6c5-x2x4q" and cart.tag("db.statement") == "GET cart:42"
    assert trace.errors == 0 and trace.services == sorted(f"{s}-{tag}" for s in ("orders", "redis", "web"))
    # A 16-digit id is the low half of the trace's id, as Jaeger's UI accepts it.
    assert door.trace(endpoint, trace_id.upper()).trace_id == trace_id


def test_the_error_span_and_its_event_are_read(jaeger):
    tag = unique("t")[-6:]
    trace_id = jaeger.send(renamed(send_traces().failed_payment("payments"), tag))
    jaeger.wait_for_trace(trace_id, spans=2)
    trace = door.trace(Endpoint(url=jaeger.url), trace_id)
    charge = next(s for s in trace.spans if s.operation == "charge")
    assert charge.error and trace.errors == 2
    assert dict(charge.logs[0].fields)["exception.message"] == "card declined"


def test_search_by_service_operation_tags_and_duration(jaeger):
    tag = unique("t")[-6:]
    trace_id = jaeger.send(renamed(send_traces().checkout("payments"), tag))
    jaeger.wait_for_trace(trace_id, spans=4)
    endpoint = Endpoint(url=jaeger.url)
    web, redis = f"web-{tag}", f"redis-{tag}"

    assert {web, redis} <= set(door.services(endpoint))
    assert door.operations(endpoint, redis) == ["GET cart"]
    assert [t.trace_id for t in door.search(endpoint, query(web))] == [trace_id]
    assert [t.trace_id for t in door.search(endpoint, query(redis, min_duration_us=100_000))] == [trace_id]
    assert door.search(endpoint, query(redis, min_duration_us=160_000)) == []
    assert door.search(endpoint, query(redis, max_duration_us=100_000)) == []
    assert [t.trace_id for t in door.search(endpoint, query(redis, operation="GET cart"))] == [trace_id]
    found = door.search(endpoint, query(redis, tags={"db.system": "redis", "k8s.namespace.name": "payments"}))
    assert [t.trace_id for t in found] == [trace_id]
    assert door.search(endpoint, query(redis, tags={"k8s.namespace.name": "elsewhere"})) == []


def test_dependencies_count_calls_between_services(jaeger):
    tag = unique("t")[-6:]
    trace_id = jaeger.send(renamed(send_traces().checkout("payments"), tag))
    jaeger.wait_for_trace(trace_id, spans=4)
    found = door.dependencies(Endpoint(url=jaeger.url), end=timezone.now(), lookback=timedelta(minutes=15))
    edges = {(d.parent, d.child): d.calls for d in found if d.parent.endswith(tag)}
    assert edges == {
        (f"web-{tag}", f"orders-{tag}"): 1,
        (f"orders-{tag}", f"redis-{tag}"): 1,
        (f"orders-{tag}", f"orders-{tag}"): 1,
    }


def test_probe_says_jaeger_answers(jaeger):
    assert door.probe(Endpoint(url=jaeger.url)).get("reachable") is True


def test_a_missing_trace_and_an_id_that_cannot_be_one_are_not_found(jaeger):
    endpoint = Endpoint(url=jaeger.url)
    with pytest.raises(door.NotFound, match="There is no trace 0123456789abcdef0123456789abcdef"):
        door.trace(endpoint, "0123456789abcdef0123456789abcdef")
    hostile = Hostile()
    try:
        for bad in ("../services", "xyz", "0123", "0123456789abcdef0", "a" * 33, "", "0123456789abcdeg"):
            with pytest.raises(door.NotFound):
                door.trace(Endpoint(url=hostile.url), bad)
        assert hostile.seen == []  # refused before any request was made
    finally:
        hostile.server.shutdown()


def test_no_address_and_a_stopped_jaeger_are_sentences(jaeger):
    with pytest.raises(door.NotConfigured, match="No Jaeger URL is set"):
        door.services(Endpoint(url=""))
    jaeger.stop()
    try:
        with pytest.raises(door.Unreachable, match=f"Jaeger at {jaeger.url} could not be reached"):
            door.services(Endpoint(url=jaeger.url))
        with pytest.raises(door.Unreachable):
            door.probe(Endpoint(url=jaeger.url))
    finally:
        jaeger.start()


@pytest.fixture
def hostile():
    server = Hostile()
    yield server
    server.server.shutdown()


def test_answers_too_large_malformed_slow_or_refused_are_sentences_and_credentials_travel_in_headers(
    hostile, monkeypatch
):
    endpoint = Endpoint(url=hostile.url, token="t0ken", tenant="team-a")
    hostile.body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(door.Unreadable, match="cannot read \\(JSON\\)"):
        door.services(endpoint)
    monkeypatch.setattr(door, "MAX_BYTES", 1024)
    hostile.body = lambda: iter([b'{"data": ["' + b"x" * 4096 + b'"]}'])
    with pytest.raises(door.Unreadable, match="more than 0 MiB"):
        door.services(endpoint)
    hostile.body = b'{"data": {"not": "a list"}}'
    with pytest.raises(door.Unreadable, match="a list of names"):
        door.services(endpoint)
    hostile.body = b'{"data": [{"traceID": "ab", "spans": [{"spanID": 5}]}]}'
    with pytest.raises(door.Unreadable, match="cannot read"):
        door.search(endpoint, query("web"))
    hostile.status, hostile.body = (
        400,
        json.dumps({"data": None, "errors": [{"code": 400, "msg": "bad tags"}]}).encode(),
    )
    with pytest.raises(door.Refused, match="refused the request \\(HTTP 400\\): bad tags"):
        door.search(endpoint, query("web"))
    hostile.status = 401
    with pytest.raises(door.Unreachable, match="refused Kubemate's credentials"):
        door.services(endpoint)
    hostile.status, hostile.body, hostile.delay = 200, b'{"data": []}', 1.5
    with pytest.raises(door.Unreachable, match="did not answer within 1 seconds"):
        door.services(endpoint, timeout=1)
    assert all(auth == "Bearer t0ken" for _path, auth in hostile.seen)
    assert all("t0ken" not in path for path, _auth in hostile.seen)


def test_a_trace_keeps_at_most_max_spans(hostile, monkeypatch):
    monkeypatch.setattr(door, "MAX_SPANS", 3)
    spans = [
        {"traceID": "ab" * 16, "spanID": f"{i:016x}", "operationName": "op", "startTime": 1000 + i, "duration": 5,
         "references": [], "processID": "p1"}
        for i in range(5)
    ]  # fmt: skip
    hostile.body = json.dumps(
        {"data": [{"traceID": "ab" * 16, "spans": spans, "processes": {"p1": {"serviceName": "s"}}}]}
    ).encode()
    trace = door.trace(Endpoint(url=hostile.url), "ab" * 16)
    assert len(trace.spans) == 3 and trace.dropped == 2


def test_the_tenant_is_sent_as_x_tenant(monkeypatch):
    assert door._headers(Endpoint(url="http://j", tenant="team-a"))["x-tenant"] == "team-a"
    assert "x-tenant" not in door._headers(Endpoint(url="http://j"))
