"""Traces for one person: who sees what, searches as they may run them, the waterfall and its critical path, the
service graph.

Tenancy. Jaeger has no permissions of its own. Whoever holds ``traces.view`` for a whole cluster sees every trace
of its Jaeger. Someone who holds it in some namespaces only (a project) sees the traces that have a span sent from
one of them (the span's process tag ``k8s.namespace.name``): their searches are asked once per namespace with that
tag added (at most ``MAX_NAMESPACE_SEARCHES``, merged) and every answer is filtered again here; a trace id that is
not theirs answers the same sentence as a missing one; in a trace of theirs, spans of other namespaces keep their
place and time but lose their names, tags and logs (``Row.hidden``). The services they may choose are those seen
in their namespaces (``service_namespaces``: one bounded search per service, cached briefly per cluster, the same
for everyone). Their service graph is counted from their own recent traces, other namespaces' services as one
anonymous node.

The critical path is Jaeger UI's: from the root, go to the child that finishes last, and from a child back to its
parent at the child's start, to the child that finished last before it; children are first cut to their parent's
time (``critical_path``). It is the chain of work the trace's end waited for.
"""

from __future__ import annotations

import zlib
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.cache import cache
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts import access
from apps.accounts.capabilities import TRACES_VIEW
from apps.clusters.models import Cluster
from apps.core.deferred import render
from apps.observability import endpoints, jaeger

NAMESPACE_TAG = "k8s.namespace.name"
POD_TAG = "k8s.pod.name"
MAX_NAMESPACE_SEARCHES = 10  # searches one project search is split into; more namespaces: one search, filtered
MAX_SERVICES_SCANNED = 100  # services looked at to learn their namespaces
SERVICE_SCAN_LIMIT = 20  # traces read per service to learn its namespaces
SERVICE_SCAN_LOOKBACK = timedelta(days=2)
SERVICE_CACHE_SECONDS = 60
PARALLEL = 4
MAX_INDENT = 24  # levels drawn; deeper spans stay at this indentation
COLLAPSE_OVER = 300  # spans: above this, subtrees below the second level start collapsed
GRAPH_TRACES = 200  # traces a project's service graph is counted from
GRAPH_SERVICES = 10  # services a project's service graph searches
OUTSIDE = "__outside__"
# Service colours: no reds or pinks, which mark errors; a service keeps its colour on every page.
PALETTE = ("#066fd1", "#2fb344", "#f76707", "#ae3ec9", "#17a2b8", "#f59f00", "#74b816", "#4263eb",
           "#0ca678", "#7048e8", "#1098ad", "#5c940d", "#868e96", "#1971c2")  # fmt: skip


# --- who sees what ------------------------------------------------------------------------------------------------


def clusters(user) -> list[Cluster]:
    """Clusters where ``user`` may read traces somewhere, by name."""
    return [
        c
        for c in access.clusters(user).order_by("name")
        if access.visible_namespaces(user, TRACES_VIEW, cluster=c) != frozenset()
    ]


def cluster(user, cluster_id) -> Cluster:
    """The cluster, or 404 when it is missing or ``user`` reads no traces in it."""
    found = access.cluster(user, cluster_id)
    if access.visible_namespaces(user, TRACES_VIEW, cluster=found) == frozenset():
        raise Http404
    return found


def namespaces_of(user, cluster) -> frozenset[str] | None:
    """The namespaces whose spans ``user`` sees in ``cluster``; None: all."""
    return access.visible_namespaces(user, TRACES_VIEW, cluster=cluster)


def span_visible(span: jaeger.Span, namespaces: frozenset[str] | None) -> bool:
    return namespaces is None or span.process.namespace in namespaces


def trace_visible(trace: jaeger.Trace, namespaces: frozenset[str] | None) -> bool:
    """A trace is someone's when one of its spans was sent from one of their namespaces."""
    return namespaces is None or any(span_visible(s, namespaces) for s in trace.spans)


def service_namespaces(cluster) -> dict[str, frozenset[str]]:
    """Each service of the cluster's Jaeger with the namespaces its recent spans came from (cached briefly; the
    same for everyone, filtered per person by ``services_for``)."""
    key = f"traces:service-namespaces:{cluster.pk}"
    found = cache.get(key)
    if found is not None:
        return found
    endpoint = endpoints.jaeger(cluster)
    names = jaeger.services(endpoint)[:MAX_SERVICES_SCANNED]
    end = timezone.now()

    def scan(service: str) -> tuple[str, frozenset[str]]:
        query = jaeger.Query(service=service, start=end - SERVICE_SCAN_LOOKBACK, end=end, limit=SERVICE_SCAN_LIMIT)
        try:
            traces = jaeger.search(endpoint, query, timeout=5)
        except jaeger.JaegerError:
            return service, frozenset()
        return service, frozenset(
            s.process.namespace for t in traces for s in t.spans if s.service == service and s.process.namespace
        )

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        found = dict(pool.map(scan, names))
    cache.set(key, found, SERVICE_CACHE_SECONDS)
    return found


def services_for(user, cluster) -> list[str]:
    """The services ``user`` may choose in ``cluster``'s Jaeger (errors are the door's)."""
    namespaces = namespaces_of(user, cluster)
    if namespaces is None:
        return jaeger.services(cluster)
    return sorted(s for s, seen in service_namespaces(cluster).items() if seen & namespaces)


def operations_for(user, cluster, service: str) -> list[str]:
    if not service or service not in services_for(user, cluster):
        return []
    return jaeger.operations(cluster, service)


# --- searching ----------------------------------------------------------------------------------------------------


@dataclass
class Found:
    """One trace in the results as its reader may see it."""

    trace: jaeger.Trace
    root_service: str  # "" when the root is outside the reader's projects
    root_operation: str
    services: list[tuple[str, str, int]]  # (name, colour, spans) of the services the reader may see
    outside: int  # spans outside the reader's projects
    spans: int
    errors: int
    duration_us: int
    start: datetime
    bar: float = 0.0  # duration as a share of the longest found, in %
    url: str = ""

    @property
    def trace_id(self) -> str:
        return self.trace.trace_id

    @property
    def duration_text(self) -> str:
        return duration_text(self.duration_us)


@dataclass
class Results:
    found: list[Found] = field(default_factory=list)
    sentence: str = ""
    missing: bool = False  # no Jaeger address (those who manage clusters get a link to the settings)
    asked: bool = False

    def scatter(self) -> dict:
        """The latency scatter for traces.js: x the start (shifted to the reader's zone), y the duration (ms)."""
        points = [
            {
                "id": f.trace_id,
                "x": shifted_ms(f.start),
                "y": round(f.duration_us / 1000, 3),
                "error": f.errors > 0,
                "name": f"{f.root_service or _('outside your projects')}: {f.root_operation}",
                "url": f.url,
            }
            for f in self.found
        ]
        return {"points": points, "labels": {"duration": _("Duration (ms)"), "spans": _("spans")}}


def duration_text(us: int) -> str:
    """A duration as Jaeger's UI writes it: 850μs, 12.5ms, 1.2s, 2m 5s."""
    if us < 1000:
        return f"{us}μs"
    if us < 1_000_000:
        return f"{us / 1000:.3g}ms"
    if us < 60_000_000:
        return f"{us / 1_000_000:.3g}s"
    minutes, seconds = divmod(us // 1_000_000, 60)
    return f"{minutes}m {seconds}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60}m"


def colour(service: str) -> str:
    """The same colour for a service everywhere (CRC-32 of its name: names differing only at the end, such as
    payments-api and payments-worker, land apart)."""
    return PALETTE[zlib.crc32(service.encode()) % len(PALETTE)]


def shifted_ms(moment: datetime) -> int:
    """A time as ECharts draws it in UTC mode: shifted to the reader's time zone (as the metrics charts do)."""
    local = timezone.localtime(moment)
    return int((moment.timestamp() + local.utcoffset().total_seconds()) * 1000)


def found_of(trace: jaeger.Trace, namespaces: frozenset[str] | None) -> Found:
    seen = [s for s in trace.spans if span_visible(s, namespaces)]
    counts = Counter(s.service for s in seen)
    root = trace.root
    shown_root = root is not None and span_visible(root, namespaces)
    return Found(
        trace=trace,
        root_service=root.service if shown_root else "",
        root_operation=root.operation if shown_root else "",
        services=[(name, colour(name), counts[name]) for name in sorted(counts)],
        outside=len(trace.spans) - len(seen),
        spans=len(trace.spans) + trace.dropped,
        errors=sum(1 for s in seen if s.error),
        duration_us=trace.duration_us,
        start=trace.start,
    )


def search(user, cluster, query: jaeger.Query) -> Results:
    """The traces matching ``query`` that ``user`` may see, newest first, at most ``query.limit``."""
    results = Results(asked=True)
    endpoint = endpoints.jaeger(cluster)
    if not endpoint.url:
        results.sentence, results.missing = _("No Jaeger is set for this cluster, so there are no traces."), True
        return results
    namespaces = namespaces_of(user, cluster)
    try:
        traces = _search(endpoint, query, namespaces)
    except jaeger.JaegerError as exc:
        results.sentence = render(exc.stored)
        return results
    traces = [t for t in traces if trace_visible(t, namespaces)]
    traces.sort(key=lambda t: t.start_us, reverse=True)
    results.found = [found_of(t, namespaces) for t in traces[: query.limit]]
    longest = max((f.duration_us for f in results.found), default=0)
    for f in results.found:
        f.bar = round(100 * f.duration_us / longest, 2) if longest else 0.0
    return results


def _search(endpoint, query: jaeger.Query, namespaces: frozenset[str] | None) -> list[jaeger.Trace]:
    if namespaces is None:
        return jaeger.search(endpoint, query)
    asked = query.tags.get(NAMESPACE_TAG)
    if asked is not None:
        if asked not in namespaces:
            return []
        return jaeger.search(endpoint, query)
    if len(namespaces) > MAX_NAMESPACE_SEARCHES:
        return jaeger.search(endpoint, query)  # filtered by the caller
    queries = [
        jaeger.Query(**{**query.__dict__, "tags": {**query.tags, NAMESPACE_TAG: ns}}) for ns in sorted(namespaces)
    ]
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(queries))) as pool:
        answers = list(pool.map(lambda q: _ask(endpoint, q), queries))
    merged: dict[str, jaeger.Trace] = {}
    for answer in answers:
        if isinstance(answer, jaeger.JaegerError):
            raise answer
        for trace in answer:
            merged.setdefault(trace.trace_id, trace)
    return list(merged.values())


def _ask(endpoint, query: jaeger.Query):
    try:
        return jaeger.search(endpoint, query)
    except jaeger.JaegerError as exc:
        return exc


# --- one trace ----------------------------------------------------------------------------------------------------


def missing_sentence(trace_id: str) -> str:
    return _("There is no trace %(id)s in Jaeger (it may be older than Jaeger keeps traces).") % {"id": trace_id[:32]}


def open_trace(user, cluster, trace_id: str) -> jaeger.Trace:
    """The trace, if ``user`` may see it; ``jaeger.NotFound`` with the same sentence when it is missing or not
    theirs (so its existence does not leak)."""
    trace = jaeger.trace(cluster, trace_id)
    if not trace_visible(trace, namespaces_of(user, cluster)):
        raise jaeger.NotFound(missing_sentence(str(trace_id).lower()))
    return trace


@dataclass
class Row:
    """One span in the waterfall."""

    span: jaeger.Span
    depth: int
    parent_id: str
    children: int
    hidden: bool  # outside the reader's projects: time only
    left: float  # % of the trace's length
    width: float
    critical: bool
    sections: list[tuple[float, float]]  # critical sections within the bar (left, width in % of the bar)
    collapsed: bool = False
    offset_us: int = 0
    logs_url: str = ""
    index: int = 0
    parent_index: int = -1  # -1: a root
    events: list[tuple[str, tuple]] = field(default_factory=list)  # (time from the trace's start, fields)

    @property
    def duration_text(self) -> str:
        return duration_text(self.span.duration_us)

    @property
    def offset_text(self) -> str:
        return duration_text(self.offset_us)

    @property
    def indent(self) -> int:
        return min(self.depth, MAX_INDENT)

    @property
    def error(self) -> bool:
        return not self.hidden and self.span.error


@dataclass
class Waterfall:
    trace: jaeger.Trace
    rows: list[Row]
    critical: list[str]  # span ids on the critical path, from the root
    depth: int
    services: list[tuple[str, str]]  # (name, colour) the reader may see
    outside: int
    errors: int
    ticks: list[tuple[float, str]]  # (left %, time from the start) of the time axis

    @property
    def duration_text(self) -> str:
        return duration_text(self.trace.duration_us)


def _children(trace: jaeger.Trace) -> tuple[dict[str, list[jaeger.Span]], list[jaeger.Span]]:
    ids = {s.span_id for s in trace.spans}
    children: dict[str, list[jaeger.Span]] = defaultdict(list)
    roots = []
    for span in trace.spans:
        parent = span.parent_id
        if parent and parent in ids:
            children[parent].append(span)
        else:
            roots.append(span)
    for spans in children.values():
        spans.sort(key=lambda s: (s.start_us, s.span_id))
    roots.sort(key=lambda s: (s.start_us, s.span_id))
    return children, roots


def _order(trace: jaeger.Trace) -> list[tuple[jaeger.Span, int]]:
    """Spans depth first, children by start; spans on a cycle of references (no root above them) come last."""
    children, roots = _children(trace)
    ordered, seen = [], set()
    pending = list(roots)
    for span in trace.spans:
        pending.append(span)  # after the roots: what a cycle keeps unreachable
    for start in pending:
        if start.span_id in seen:
            continue
        stack = [(start, 0)]
        while stack:
            span, depth = stack.pop()
            if span.span_id in seen:
                continue
            seen.add(span.span_id)
            ordered.append((span, depth))
            stack.extend((c, depth + 1) for c in reversed(children.get(span.span_id, [])))
    return ordered


def critical_path(trace: jaeger.Trace) -> list[tuple[str, int, int]]:
    """(span id, start µs, end µs) of each section of the critical path, from the end of the trace backwards.

    Only CHILD_OF children count (a FOLLOWS_FROM span is not waited for); each child is first cut to its parent's
    time, and dropped when it lies wholly outside it."""
    root = trace.root
    if root is None:
        return []
    by_id = {s.span_id: s for s in trace.spans}
    bounds: dict[str, tuple[int, int]] = {root.span_id: (root.start_us, root.end_us)}
    kids: dict[str, list[str]] = defaultdict(list)
    parent_of: dict[str, str] = {}
    direct: dict[str, list[jaeger.Span]] = defaultdict(list)
    for span in trace.spans:
        ref = next((r for r in span.references if r.kind == "CHILD_OF" and r.trace_id == span.trace_id), None)
        if ref and ref.span_id in by_id and ref.span_id != span.span_id:
            direct[ref.span_id].append(span)
    stack = [root.span_id]
    while stack:  # cut children to their parent's time, top down
        current = stack.pop()
        low, high = bounds[current]
        for child in direct.get(current, []):
            if child.span_id in bounds or child.start_us > high or child.end_us < low:
                continue
            bounds[child.span_id] = (max(child.start_us, low), min(child.end_us, high))
            parent_of[child.span_id] = current
            kids[current].append(child.span_id)
            stack.append(child.span_id)
    for ids in kids.values():
        ids.sort(key=lambda i: bounds[i][1], reverse=True)  # last to finish first
    sections: list[tuple[str, int, int]] = []
    current, returning = root.span_id, None
    for _step in range(4 * len(trace.spans) + 4):
        start, end = bounds[current]
        until = returning if returning is not None else end
        if returning is None:
            last = kids[current][0] if kids[current] else None
        else:
            last = next((k for k in kids[current] if bounds[k][1] < returning), None)
        if last is not None:
            if bounds[last][1] != until:
                sections.append((current, bounds[last][1], until))
            current, returning = last, None
            continue
        if start != until:
            sections.append((current, start, until))
        if current not in parent_of:
            break
        current, returning = parent_of[current], start
    return sections


def waterfall(user, cluster, trace: jaeger.Trace) -> Waterfall:
    namespaces = namespaces_of(user, cluster)
    total = max(trace.duration_us, 1)
    origin = trace.start_us
    sections = critical_path(trace)
    by_span: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for span_id, start, end in sections:
        by_span[span_id].append((start, end))
    children, _roots = _children(trace)
    many = len(trace.spans) > COLLAPSE_OVER
    rows = []
    for span, depth in _order(trace):
        length = max(span.duration_us, 1)
        rows.append(
            Row(
                span=span,
                depth=depth,
                parent_id=span.parent_id,
                children=len(children.get(span.span_id, [])),
                hidden=not span_visible(span, namespaces),
                left=round(100 * (span.start_us - origin) / total, 3),
                width=round(max(100 * span.duration_us / total, 0.2), 3),
                critical=span.span_id in by_span,
                sections=[
                    (round(100 * (s - span.start_us) / length, 3), round(max(100 * (e - s) / length, 0.5), 3))
                    for s, e in by_span.get(span.span_id, [])
                ],
                collapsed=many and depth >= 1 and bool(children.get(span.span_id)),
                offset_us=span.start_us - origin,
                events=[(duration_text(max(0, log.timestamp_us - origin)), log.fields) for log in span.logs],
            )
        )
    position = {}
    for index, row in enumerate(rows):
        row.index = index
        position[row.span.span_id] = index
    for row in rows:
        row.parent_index = position.get(row.parent_id, -1) if row.depth else -1
    seen = [r.span for r in rows if not r.hidden]
    names = sorted({s.service for s in seen})
    return Waterfall(
        trace=trace,
        rows=rows,
        critical=list(dict.fromkeys(s for s, _a, _b in reversed(sections))),
        depth=max((r.depth for r in rows), default=0) + 1,
        services=[(n, colour(n)) for n in names],
        outside=len(rows) - len(seen),
        errors=sum(1 for s in seen if s.error),
        ticks=[(round(100 * i / 4, 2), duration_text(int(total * i / 4))) for i in range(5)],
    )


# --- the service graph --------------------------------------------------------------------------------------------


@dataclass
class Graph:
    edges: list[tuple[str, str, int]] = field(default_factory=list)  # (parent, child, calls); OUTSIDE: anonymous
    sentence: str = ""
    missing: bool = False
    counted_from: int = 0  # traces a project's graph was counted from (0: Jaeger's own counts)

    def chart(self) -> dict:
        outside = _("outside your projects")
        nodes = sorted({n for p, c, _n in self.edges for n in (p, c)})
        return {
            "nodes": [{"name": outside if n == OUTSIDE else n, "outside": n == OUTSIDE} for n in nodes],
            "edges": [
                {"source": outside if p == OUTSIDE else p, "target": outside if c == OUTSIDE else c, "calls": n}
                for p, c, n in self.edges
            ],
            "labels": {"calls": _("calls")},
        }


def graph(user, cluster, start: datetime, end: datetime) -> Graph:
    """Calls between services from ``start`` to ``end`` as ``user`` may see them."""
    result = Graph()
    endpoint = endpoints.jaeger(cluster)
    if not endpoint.url:
        result.sentence, result.missing = _("No Jaeger is set for this cluster, so there are no traces."), True
        return result
    namespaces = namespaces_of(user, cluster)
    try:
        if namespaces is None:
            found = jaeger.dependencies(endpoint, end=end, lookback=end - start)
            result.edges = sorted(((d.parent, d.child, d.calls) for d in found), key=lambda e: (e[0], e[1]))
            return result
        traces = _project_traces(user, cluster, endpoint, start, end, namespaces)
    except jaeger.JaegerError as exc:
        result.sentence = render(exc.stored)
        return result
    counts: Counter = Counter()
    for trace in traces:
        by_id = {s.span_id: s for s in trace.spans}
        for span in trace.spans:
            parent = by_id.get(span.parent_id)
            if parent is None:
                continue
            a = parent.service if span_visible(parent, namespaces) else OUTSIDE
            b = span.service if span_visible(span, namespaces) else OUTSIDE
            if a == OUTSIDE and b == OUTSIDE:
                continue
            counts[(a, b)] += 1
    result.edges = sorted(((a, b, n) for (a, b), n in counts.items()), key=lambda e: (e[0], e[1]))
    result.counted_from = len(traces)
    return result


def _project_traces(user, cluster, endpoint, start, end, namespaces) -> list[jaeger.Trace]:
    names = services_for(user, cluster)[:GRAPH_SERVICES]
    per = max(1, min(jaeger.MAX_LIMIT, GRAPH_TRACES // max(1, len(names))))
    merged: dict[str, jaeger.Trace] = {}
    for name in names:
        for trace in _search(endpoint, jaeger.Query(service=name, start=start, end=end, limit=per), namespaces):
            if trace_visible(trace, namespaces):
                merged.setdefault(trace.trace_id, trace)
    return list(merged.values())
