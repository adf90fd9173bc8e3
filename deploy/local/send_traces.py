"""Demo traces: spans sent to a Jaeger (or any OTLP receiver) over OTLP/HTTP, in OTLP's JSON encoding.

Each span is sent by the process it belongs to: a resource with ``service.name``, ``k8s.namespace.name``,
``k8s.pod.name`` and ``k8s.container.name``, as the OpenTelemetry operator's injection (or the collector's
k8sattributes processor) would set them, so the console can link a span to its pod's logs and tell whose
namespace it comes from.

    .venv/bin/python deploy/local/send_traces.py --endpoint http://127.0.0.1:4318 --namespace payments --print-ids

sends two traces and prints their ids (one a line, ``checkout <id>`` and ``failed-payment <id>``; the demo's log
lines carry the same ids):

- ``checkout``: ``web`` GET /checkout (200 ms) calls ``orders`` POST /orders, which reads the cart from
  ``redis`` (GET cart:…, 150 ms: the slow span the critical path goes through) and writes the order;
- ``failed-payment``: ``web`` POST /pay calls ``payments`` charge, which fails (status ERROR, an exception
  event) and ``web`` answers 502.

``send(endpoint, spans)`` sends any tree of spans with chosen times (the tests craft traces with it): a list of
``Spec``s, parents before their children, times in milliseconds from the trace's start. Used by
tests/plugins/jaeger.py and by ``make demo``; nothing in the console imports it.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
import urllib.request
from dataclasses import dataclass, field


@dataclass
class Spec:
    """One span: who sends it (service, namespace, pod, container), its place in the tree (``parent``: the key of
    an earlier span; ``follows``: keys it follows from, sent as links) and its time in ms from the trace's
    start."""

    key: str
    service: str
    name: str
    start_ms: float
    duration_ms: float
    parent: str = ""
    namespace: str = "default"
    pod: str = ""
    container: str = ""
    error: bool = False
    kind: str = "server"  # server, client, internal, producer, consumer
    attributes: dict = field(default_factory=dict)
    events: list = field(default_factory=list)  # (ms from the trace's start, name, attributes)
    follows: tuple = ()


# OTLP's SpanKind and StatusCode numbers (opentelemetry-proto trace.proto).
KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
STATUS_ERROR = 2


def _traces_url(endpoint: str) -> str:
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def _value(value) -> dict:
    """An OTLP AnyValue in the protobuf JSON mapping (64-bit integers as strings)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _attributes(mapping: dict) -> list[dict]:
    return [{"key": key, "value": _value(value)} for key, value in mapping.items()]


def send(endpoint: str, spans: list[Spec], *, start_ns: int | None = None, headers: dict | None = None) -> str:
    """Send ``spans`` (one trace) to the OTLP/HTTP receiver at ``endpoint``; the trace id (32 hex digits).

    The trace starts at ``start_ns`` (nanoseconds since the epoch; default: now minus its length, so it ends
    now). One OTLP/HTTP JSON request, a resource per process (service, namespace, pod, container): what an
    instrumented process's exporter sends, without the SDK (OTLP's JSON encoding is part of the protocol)."""
    if start_ns is None:
        length = max((s.start_ms + s.duration_ms for s in spans), default=0)
        start_ns = time.time_ns() - int(length * 1_000_000)
    trace_id = secrets.token_hex(16)
    span_ids = {spec.key: secrets.token_hex(8) for spec in spans}
    resources: dict[tuple, list] = {}

    def at(ms: float) -> str:
        return str(start_ns + int(ms * 1_000_000))

    for spec in spans:
        pod = spec.pod or f"{spec.service}-7d9f8b6c5-x2x4q"
        process = (spec.service, spec.namespace, pod, spec.container or spec.service)
        span = {
            "traceId": trace_id,
            "spanId": span_ids[spec.key],
            "name": spec.name,
            "kind": KINDS[spec.kind],
            "startTimeUnixNano": at(spec.start_ms),
            "endTimeUnixNano": at(spec.start_ms + spec.duration_ms),
            "attributes": _attributes(spec.attributes),
            "events": [
                {"timeUnixNano": at(moment), "name": name, "attributes": _attributes(attributes)}
                for moment, name, attributes in spec.events
            ],
            "links": [{"traceId": trace_id, "spanId": span_ids[k]} for k in spec.follows if k in span_ids],
            "status": {"code": STATUS_ERROR, "message": "failed"} if spec.error else {},
        }
        if spec.parent in span_ids:
            span["parentSpanId"] = span_ids[spec.parent]
        resources.setdefault(process, []).append(span)
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": _attributes(
                        {
                            "service.name": service,
                            "k8s.namespace.name": namespace,
                            "k8s.pod.name": pod,
                            "k8s.container.name": container,
                        }
                    )
                },
                "scopeSpans": [{"scope": {"name": "kubemate.demo"}, "spans": process_spans}],
            }
            for (service, namespace, pod, container), process_spans in resources.items()
        ]
    }
    request = urllib.request.Request(  # noqa: S310 - the receiver the caller names (loopback in tests and the demo)
        _traces_url(endpoint),
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        answer.read()
    return trace_id


def checkout(namespace: str = "payments") -> list[Spec]:
    """web → orders → redis: 200 ms, of which Redis takes 150."""
    return [
        Spec("web", "web", "GET /checkout", 0, 200, namespace=namespace, attributes={"http.method": "GET"}),
        Spec("orders", "orders", "POST /orders", 20, 175, parent="web", namespace=namespace),
        Spec(
            "cart",
            "redis",
            "GET cart",
            30,
            150,
            parent="orders",
            namespace=namespace,
            kind="client",
            attributes={"db.system": "redis", "db.statement": "GET cart:42"},
        ),
        Spec("save", "orders", "INSERT orders", 182, 10, parent="orders", namespace=namespace, kind="client"),
    ]


def failed_payment(namespace: str = "payments") -> list[Spec]:
    """web → payments, whose charge fails."""
    return [
        Spec("web", "web", "POST /pay", 0, 80, namespace=namespace, error=True, attributes={"http.status_code": 502}),
        Spec(
            "charge",
            "payments",
            "charge",
            10,
            60,
            parent="web",
            namespace=namespace,
            error=True,
            events=[(65, "exception", {"exception.type": "CardDeclined", "exception.message": "card declined"})],
        ),
    ]


DEMO = {"checkout": checkout, "failed-payment": failed_payment}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="OTLP/HTTP receiver, e.g. http://127.0.0.1:4318")
    parser.add_argument("--namespace", default="payments", help="k8s.namespace.name of every span")
    parser.add_argument("--print-ids", action="store_true", help="print '<name> <trace id>' for each trace sent")
    arguments = parser.parse_args()
    for name, build in DEMO.items():
        trace_id = send(arguments.endpoint, build(arguments.namespace))
        if arguments.print_ids:
            print(name, trace_id, flush=True)


if __name__ == "__main__":
    main()
