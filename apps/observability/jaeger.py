"""The one door to a cluster's Jaeger (Cluster.jaeger_url): its query API, with errors as sentences.

Callers give a cluster or an ``Endpoint`` (``endpoints.jaeger(cluster)``: the address, basic-auth or bearer-token
credentials and the tenant sent as ``x-tenant`` when Jaeger runs with multi-tenancy) and get typed answers: the
services (``services``), a service's operations (``operations``), ``Trace``s found by a ``Query`` (``search``) or
by id (``trace``), the service-to-service call counts (``dependencies``) and ``probe`` for the status page.

A ``Trace`` holds its ``Span``s (each with its ``Process``: the service and the resource's tags, where
``k8s.namespace.name`` and ``k8s.pod.name`` say where it ran) and knows each span's parent from its references
(``CHILD_OF`` first, else ``FOLLOWS_FROM``; a parent missing from the trace makes the span a root).

What can go wrong is a ``JaegerError`` whose text is the translated sentence to show (``stored`` the form to
keep): no address (``NotConfigured``), no answer, not in time or credentials refused (``Unreachable``), a request
refused with Jaeger's own reason (``Refused``), a trace that is not there (``NotFound``), or an answer too large or
not shaped as the query API answers (``Unreadable``). Every answer is read up to ``MAX_BYTES`` before it is
parsed, its structure is checked before anything is built from it, and a trace keeps at most ``MAX_SPANS`` spans.
Trace ids and service names are checked before a path is built. Credentials travel only in headers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import urllib3

from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D
from apps.observability import endpoints, fetching
from apps.observability.endpoints import Endpoint

TIMEOUT = 8
MAX_BYTES = 16 * 1024 * 1024  # a search of 100 traces of a few hundred spans each fits easily
MAX_SPANS = 10_000  # spans kept of one trace (the waterfall of more is of no use to a person)
MAX_TAGS = 200  # tags (or log fields) kept of one span or process
MAX_LOGS = 100  # logs (events) kept of one span
MAX_TEXT = 4000  # characters kept of one tag value
MAX_NAMES = 5000  # services or operations kept
MAX_LIMIT = 100  # traces one search asks for
REASON_MAX = 300
TRACE_ID = re.compile(r"^(?:[0-9a-f]{16}|[0-9a-f]{32})$")
TENANT_HEADER = "x-tenant"
ERROR_STATUS = "ERROR"


class JaegerError(Failure):
    """Jaeger gave no usable answer; the message is the sentence to show, ``stored`` the one to keep."""


class NotConfigured(JaegerError):
    """The cluster has no Jaeger address."""


class Unreachable(JaegerError):
    """Jaeger did not answer, not in time, or refused Kubemate's credentials: asking again now is no use."""


class Refused(JaegerError):
    """Jaeger answered, and refused the request (its reason is in the sentence)."""


class NotFound(Refused):
    """No trace with this id (or an id that cannot be one)."""


class Unreadable(JaegerError):
    """The answer was too large, or not shaped as the query API's answers are."""


# --- what the door answers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Process:
    """What sent a span: the service and its resource's tags."""

    service: str
    tags: tuple[tuple[str, str], ...] = ()

    def tag(self, key: str) -> str:
        return next((v for k, v in self.tags if k == key), "")

    @property
    def namespace(self) -> str:
        return self.tag("k8s.namespace.name")

    @property
    def pod(self) -> str:
        return self.tag("k8s.pod.name")

    @property
    def container(self) -> str:
        return self.tag("k8s.container.name")


@dataclass(frozen=True)
class Log:
    """An event of a span: when, and its fields (``event`` names it)."""

    timestamp_us: int
    fields: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Reference:
    kind: str  # CHILD_OF or FOLLOWS_FROM
    trace_id: str
    span_id: str


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    operation: str
    start_us: int
    duration_us: int
    process: Process
    tags: tuple[tuple[str, str], ...] = ()
    logs: tuple[Log, ...] = ()
    references: tuple[Reference, ...] = ()

    @property
    def end_us(self) -> int:
        return self.start_us + self.duration_us

    @property
    def service(self) -> str:
        return self.process.service

    def tag(self, key: str) -> str:
        return next((v for k, v in self.tags if k == key), "")

    @property
    def error(self) -> bool:
        """Marked failed: ``error=true`` (Jaeger's convention) or ``otel.status_code=ERROR`` (OpenTelemetry's)."""
        return self.tag("error").lower() == "true" or self.tag("otel.status_code").upper() == ERROR_STATUS

    @property
    def parent_id(self) -> str:
        """The span this one belongs under: its first CHILD_OF reference in the same trace, else its first
        FOLLOWS_FROM; "" for a root."""
        for kind in ("CHILD_OF", "FOLLOWS_FROM"):
            for ref in self.references:
                if ref.kind == kind and ref.trace_id == self.trace_id and ref.span_id != self.span_id:
                    return ref.span_id
        return ""


@dataclass(frozen=True)
class Trace:
    trace_id: str
    spans: tuple[Span, ...]  # by start time
    dropped: int = 0  # spans beyond MAX_SPANS, left out
    warnings: tuple[str, ...] = ()

    @property
    def start_us(self) -> int:
        return min((s.start_us for s in self.spans), default=0)

    @property
    def end_us(self) -> int:
        return max((s.end_us for s in self.spans), default=0)

    @property
    def duration_us(self) -> int:
        return self.end_us - self.start_us

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.start_us / 1e6, tz=UTC)

    @property
    def end(self) -> datetime:
        return datetime.fromtimestamp(self.end_us / 1e6, tz=UTC)

    @property
    def root(self) -> Span | None:
        """The earliest span without a parent in the trace (the request that began it)."""
        ids = {s.span_id for s in self.spans}
        roots = [s for s in self.spans if not s.parent_id or s.parent_id not in ids]
        return min(roots or self.spans, key=lambda s: (s.start_us, -s.duration_us), default=None)

    @property
    def errors(self) -> int:
        return sum(1 for s in self.spans if s.error)

    @property
    def services(self) -> list[str]:
        return sorted({s.service for s in self.spans})

    @property
    def namespaces(self) -> set[str]:
        return {s.process.namespace for s in self.spans}


@dataclass(frozen=True)
class Dependency:
    parent: str
    child: str
    calls: int


@dataclass(frozen=True)
class Query:
    """A trace search as Jaeger's UI asks it. Durations in microseconds; ``tags`` match span or process tags."""

    service: str
    start: datetime
    end: datetime
    operation: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    min_duration_us: int | None = None
    max_duration_us: int | None = None
    limit: int = 20

    def params(self) -> dict[str, str]:
        values = {
            "service": self.service,
            "start": str(_micros(self.start)),
            "end": str(_micros(self.end)),
            "limit": str(max(1, min(self.limit, MAX_LIMIT))),
        }
        if self.operation:
            values["operation"] = self.operation
        if self.tags:
            values["tags"] = json.dumps(self.tags, separators=(",", ":"), sort_keys=True)
        if self.min_duration_us is not None:
            values["minDuration"] = f"{int(self.min_duration_us)}us"
        if self.max_duration_us is not None:
            values["maxDuration"] = f"{int(self.max_duration_us)}us"
        return values


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


# --- asking -------------------------------------------------------------------------------------------------------


class _Shape(Exception):
    """The answer is not shaped as the query API's answers are; the argument says what was expected."""


Source = Endpoint  # or a Cluster: its endpoints.jaeger(cluster)


def _endpoint(source) -> Endpoint:
    return source if isinstance(source, Endpoint) else endpoints.jaeger(source)


def _headers(endpoint: Endpoint) -> dict[str, str]:
    headers = {"Accept": "application/json", **endpoint.headers}
    if endpoint.tenant:
        headers[TENANT_HEADER] = endpoint.tenant
    return headers


def _reason(body: bytes) -> str:
    """Jaeger's own reason (``errors[].msg`` of its answer, or the text); one line, cut."""
    text = body[:4000].decode("utf-8", errors="replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = text
    if isinstance(parsed, dict):
        errors = parsed.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            parsed = errors[0].get("msg") or text
        else:
            parsed = parsed.get("message") or parsed.get("error") or text
    line = " ".join(str(parsed).split())
    return line[:REASON_MAX] + ("…" if len(line) > REASON_MAX else "")


def _get(endpoint: Endpoint, path: str, *, params: dict | None = None, timeout: float = TIMEOUT, not_found=None):
    """The parsed JSON answer of ``GET /api/<path>``, or the sentence saying why there is none."""
    if not endpoint.url:
        raise NotConfigured(D(N_("No Jaeger URL is set for this cluster.")))
    values = {"url": endpoint.shown}
    slow = Unreachable(D(N_("Jaeger at %(url)s did not answer within %(seconds)s seconds."), seconds=timeout, **values))
    try:
        answer = fetching.fetch(
            "GET",
            f"{endpoint.base}/api/{path}",
            limit=MAX_BYTES,
            timeout=timeout,
            params=params,
            headers=_headers(endpoint),
            auth=endpoint.auth,
        )
    except fetching.Late:
        raise slow from None
    except fetching.Failed:
        raise Unreachable(D(N_("Jaeger at %(url)s could not be reached."), **values)) from None
    status, raw = answer.status, answer.body
    if status in (401, 403):
        if endpoint.auth or endpoint.token:
            sentence = N_(
                "Jaeger at %(url)s refused Kubemate's credentials (HTTP %(status)s); check them in the cluster's "
                "settings."
            )
        else:
            sentence = N_(
                "Jaeger at %(url)s asks for credentials (HTTP %(status)s); set them in the cluster's settings."
            )
        raise Unreachable(D(sentence, status=status, **values))
    if status == 404 and not_found:
        raise NotFound(not_found)
    if status == 404:
        raise Refused(
            D(
                N_(
                    "Jaeger at %(url)s has no query API at this address (HTTP 404); check the address in the "
                    "cluster's settings (it may need a path, such as /jaeger)."
                ),
                **values,
            )
        )
    if not 200 <= status < 300:
        raise Refused(
            D(
                N_("Jaeger at %(url)s refused the request (HTTP %(status)s): %(error)s"),
                status=status,
                error=_reason(raw) or "—",
                **values,
            )
        )
    if len(raw) > MAX_BYTES:
        raise Unreadable(
            D(
                N_("Jaeger at %(url)s answered more than %(mib)s MiB; Kubemate reads no more than that."),
                mib=MAX_BYTES // 2**20,
                **values,
            )
        )
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise _unreadable(endpoint, "JSON") from None


def _unreadable(endpoint: Endpoint, what: str) -> Unreadable:
    return Unreadable(
        D(
            N_(
                "Jaeger at %(url)s gave an answer Kubemate cannot read (%(what)s); check that the address is "
                "Jaeger's query service."
            ),
            url=endpoint.shown,
            what=what,
        )
    )


def _data(endpoint: Endpoint, answer, build):
    """``build(answer["data"])``, or the sentence saying the answer is not the query API's."""
    try:
        if not isinstance(answer, dict):
            raise _Shape("an object with data")
        return build(answer.get("data"))
    except _Shape as exc:
        raise _unreadable(endpoint, str(exc)) from None


# --- reading the answers ------------------------------------------------------------------------------------------


def _list(value, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Shape(what)
    return value


def _dict(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise _Shape(what)
    return value


def _text(value, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Shape(what)
    return value


def _int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Shape(what)
    return value


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)[:MAX_TEXT]
    if value is None:
        return ""
    return json.dumps(value)[:MAX_TEXT]


def _tags(value, what: str) -> tuple[tuple[str, str], ...]:
    found = []
    for tag in _list(value, what)[:MAX_TAGS]:
        tag = _dict(tag, what)
        found.append((_text(tag.get("key"), what), _value(tag.get("value"))))
    return tuple(found)


def _names(data) -> list[str]:
    return sorted({_text(n, "a list of names") for n in _list(data, "a list of names")[:MAX_NAMES]} - {""})


def _process(data) -> Process:
    data = _dict(data, "process")
    return Process(service=_text(data.get("serviceName"), "process serviceName"), tags=_tags(data.get("tags"), "tags"))


def _span(data, trace_id: str, processes: dict[str, Process]) -> Span:
    data = _dict(data, "span")
    refs = []
    for ref in _list(data.get("references"), "references"):
        ref = _dict(ref, "reference")
        refs.append(
            Reference(
                kind=_text(ref.get("refType"), "refType"),
                trace_id=_text(ref.get("traceID"), "reference traceID").lower(),
                span_id=_text(ref.get("spanID"), "reference spanID").lower(),
            )
        )
    logs = []
    for log in _list(data.get("logs"), "logs")[:MAX_LOGS]:
        log = _dict(log, "log")
        logs.append(
            Log(timestamp_us=_int(log.get("timestamp"), "log timestamp"), fields=_tags(log.get("fields"), "log"))
        )
    process_id = _text(data.get("processID"), "processID")
    return Span(
        trace_id=_text(data.get("traceID"), "span traceID").lower() or trace_id,
        span_id=_text(data.get("spanID"), "spanID").lower(),
        operation=_text(data.get("operationName"), "operationName"),
        start_us=_int(data.get("startTime"), "startTime"),
        duration_us=max(0, _int(data.get("duration"), "duration")),
        process=processes.get(process_id) or Process(service=""),
        tags=_tags(data.get("tags"), "span tags"),
        logs=tuple(logs),
        references=tuple(refs),
    )


def _trace(data) -> Trace:
    data = _dict(data, "trace")
    trace_id = _text(data.get("traceID"), "traceID").lower()
    processes = {
        _text(key, "process id"): _process(value)
        for key, value in _dict(data.get("processes") or {}, "processes").items()
    }
    raw = _list(data.get("spans"), "spans")
    spans = [_span(s, trace_id, processes) for s in raw[:MAX_SPANS]]
    spans.sort(key=lambda s: (s.start_us, s.span_id))
    warnings = tuple(_text(w, "warnings") for w in _list(data.get("warnings"), "warnings")[:20])
    return Trace(trace_id=trace_id, spans=tuple(spans), dropped=max(0, len(raw) - MAX_SPANS), warnings=warnings)


def _dependency(data) -> Dependency:
    data = _dict(data, "dependency")
    return Dependency(
        parent=_text(data.get("parent"), "dependency parent"),
        child=_text(data.get("child"), "dependency child"),
        calls=_int(data.get("callCount"), "dependency callCount"),
    )


# --- the calls ----------------------------------------------------------------------------------------------------


def services(source, *, timeout: float = TIMEOUT) -> list[str]:
    """The services Jaeger has spans of, by name."""
    endpoint = _endpoint(source)
    return _data(endpoint, _get(endpoint, "services", timeout=timeout), _names)


def operations(source, service: str, *, timeout: float = TIMEOUT) -> list[str]:
    """The operations (span names) of ``service``."""
    endpoint = _endpoint(source)
    if not service or len(service) > 256:
        return []
    answer = _get(endpoint, f"services/{quote(service, safe='')}/operations", timeout=timeout)
    return _data(endpoint, answer, _names)


def search(source, query: Query, *, timeout: float = TIMEOUT) -> list[Trace]:
    """The traces with a span matching ``query`` (newest first), at most ``query.limit``."""
    endpoint = _endpoint(source)
    answer = _get(endpoint, "traces", params=query.params(), timeout=timeout)
    found = _data(endpoint, answer, lambda d: [_trace(t) for t in _list(d, "a list of traces")])
    found = [t for t in found if t.spans]
    found.sort(key=lambda t: t.start_us, reverse=True)
    return found[: max(1, min(query.limit, MAX_LIMIT))]


def valid_trace_id(trace_id: str) -> bool:
    return bool(TRACE_ID.match(str(trace_id or "").lower()))


def trace(source, trace_id: str, *, timeout: float = TIMEOUT) -> Trace:
    """The trace with id ``trace_id`` (16 or 32 hex digits); ``NotFound`` when there is none."""
    endpoint = _endpoint(source)
    trace_id = str(trace_id or "").lower()
    missing = D(N_("There is no trace %(id)s in Jaeger (it may be older than Jaeger keeps traces)."), id=trace_id[:32])
    if not TRACE_ID.match(trace_id):
        raise NotFound(missing)
    answer = _get(endpoint, f"traces/{trace_id}", timeout=timeout, not_found=missing)
    found = _data(endpoint, answer, lambda d: [_trace(t) for t in _list(d, "a list of traces")])
    found = [t for t in found if t.spans]
    if not found:
        raise NotFound(missing)
    return found[0]


def dependencies(source, *, end: datetime, lookback: timedelta, timeout: float = TIMEOUT) -> list[Dependency]:
    """Calls from service to service in the ``lookback`` before ``end``, as Jaeger counts them."""
    endpoint = _endpoint(source)
    params = {"endTs": str(int(end.timestamp() * 1000)), "lookback": str(int(lookback.total_seconds() * 1000))}
    answer = _get(endpoint, "dependencies", params=params, timeout=timeout)
    return _data(endpoint, answer, lambda d: [_dependency(x) for x in _list(d, "a list of dependencies")][:MAX_NAMES])


VERSION = re.compile(rb"JAEGER_VERSION\s*=\s*(\{[^;]{0,2000}\})\s*;")


def probe(source, *, timeout: float = 3) -> dict:
    """For the status page: ``{"version": …}`` when Jaeger's UI says it, ``{"reachable": True}`` otherwise; the
    door's error when the query API does not answer."""
    import requests

    endpoint = _endpoint(source)
    services(endpoint, timeout=timeout)
    found: dict = {"reachable": True}
    try:
        with requests.get(
            f"{endpoint.base}/",
            headers={**_headers(endpoint), "Accept": "text/html"},
            auth=endpoint.auth,
            timeout=timeout,
            stream=True,
            allow_redirects=False,
        ) as page:
            head = page.raw.read(256 * 1024, decode_content=True) if page.status_code == 200 else b""
        match = VERSION.search(head or b"")
        if match:
            version = json.loads(match.group(1)).get("gitVersion")
            if isinstance(version, str) and version:
                found["version"] = version[:64]
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError, AttributeError):
        pass
    return found
