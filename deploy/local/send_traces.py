"""Demo traces: spans sent to a Jaeger (or any OTLP receiver) over OTLP/HTTP with the OpenTelemetry Python SDK.

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
import time
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode


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


KINDS = {
    "server": SpanKind.SERVER,
    "client": SpanKind.CLIENT,
    "internal": SpanKind.INTERNAL,
    "producer": SpanKind.PRODUCER,
    "consumer": SpanKind.CONSUMER,
}


def _traces_url(endpoint: str) -> str:
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def send(endpoint: str, spans: list[Spec], *, start_ns: int | None = None, headers: dict | None = None) -> str:
    """Send ``spans`` (one trace) to the OTLP/HTTP receiver at ``endpoint``; the trace id (32 hex digits).

    The trace starts at ``start_ns`` (nanoseconds since the epoch; default: now minus its length, so it ends
    now). One tracer provider per process (resource), each exporting as soon as a span ends."""
    if start_ns is None:
        length = max((s.start_ms + s.duration_ms for s in spans), default=0)
        start_ns = time.time_ns() - int(length * 1_000_000)
    providers: dict[tuple, TracerProvider] = {}
    opened: dict[str, trace.Span] = {}

    def tracer(spec: Spec):
        pod = spec.pod or f"{spec.service}-7d9f8b6c5-x2x4q"
        process = (spec.service, spec.namespace, pod, spec.container or spec.service)
        if process not in providers:
            resource = Resource.create(
                {
                    "service.name": spec.service,
                    "k8s.namespace.name": spec.namespace,
                    "k8s.pod.name": pod,
                    "k8s.container.name": spec.container or spec.service,
                }
            )
            provider = TracerProvider(resource=resource)
            provider.add_span_processor(
                SimpleSpanProcessor(OTLPSpanExporter(endpoint=_traces_url(endpoint), headers=headers, timeout=10))
            )
            providers[process] = provider
        return providers[process].get_tracer("kubemate.demo")

    def at(ms: float) -> int:
        return start_ns + int(ms * 1_000_000)

    try:
        for spec in spans:
            parent = opened.get(spec.parent) if spec.parent else None
            context = trace.set_span_in_context(parent) if parent is not None else None
            links = [Link(opened[k].get_span_context()) for k in spec.follows if k in opened]
            span = tracer(spec).start_span(
                spec.name,
                context=context,
                kind=KINDS[spec.kind],
                attributes=dict(spec.attributes),
                links=links,
                start_time=at(spec.start_ms),
            )
            for moment, name, attributes in spec.events:
                span.add_event(name, attributes=dict(attributes), timestamp=at(moment))
            if spec.error:
                span.set_status(Status(StatusCode.ERROR, "failed"))
            opened[spec.key] = span
        # Children end before their parents, as they would in a real process.
        for spec in reversed(spans):
            opened[spec.key].end(end_time=at(spec.start_ms + spec.duration_ms))
    finally:
        for provider in providers.values():
            provider.force_flush()
            provider.shutdown()
    first = opened[spans[0].key].get_span_context()
    return format(first.trace_id, "032x")


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
