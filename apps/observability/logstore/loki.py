"""Loki's HTTP query API, the backend of the log store door for ``Cluster.logs_backend == "loki"``.

The documented endpoints (Loki's "HTTP API" reference): ``GET /loki/api/v1/query_range`` for lines (``streams``
answers) and for the histogram (``count_over_time`` by level, a ``matrix`` answer), ``/loki/api/v1/labels`` and
``/loki/api/v1/label/<name>/values`` for the form, ``/loki/api/v1/status/buildinfo`` for the version. The live
tail polls ``query_range`` forward instead of holding the ``/loki/api/v1/tail`` WebSocket open, as VictoriaLogs'
backend does, so a page's poll is one short request either way. Every query passes through ``logql.render``:
every stream selector carries the person's namespaces. The tenant goes in ``X-Scope-OrgID``.

Loki is AGPL-licensed and is not run here: tests/observability/test_logstore_loki.py checks this module against
answers written from Loki's HTTP API reference (tests/observability/fixtures/loki/), served by a small HTTP
server in the test that also records what was asked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.observability.endpoints import Endpoint
from apps.observability.logstore import logql
from apps.observability.logstore.asking import Store
from apps.observability.logstore.errors import LogStoreError
from apps.observability.logstore.lines import (
    Histogram,
    LogLine,
    Page,
    make_line,
    normalise_level,
    ns_of_cursor,
    to_ns,
)
from apps.observability.logstore.query import LogQuery
from apps.observability.logstore.victorialogs import bucket_starts, choose_step

NAME = "Loki"
MAX_BATCH = 1000  # lines per request while streaming a download (Loki refuses more than 5000 by default)
MAX_VALUES = 500
CONTEXT_WINDOW = timedelta(days=1)
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_EQUAL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _store(endpoint: Endpoint) -> Store:
    return Store(endpoint, NAME, {"X-Scope-OrgID": endpoint.tenant} if endpoint.tenant else {})


def stream_id_of(labels: dict[str, str]) -> str:
    """A stream's labels as one selector text: the same stream always gives the same id."""
    return "{" + ", ".join(f"{k}={logql.quote(v)}" for k, v in sorted(labels.items())) + "}"


def _streams(store: Store, answer) -> Iterator[LogLine]:
    try:
        data = answer["data"]
        if data.get("resultType") != "streams":
            raise LogStoreError(D(logql.METRIC_QUERY))
        for item in data.get("result") or []:
            labels = {str(k): str(v) for k, v in (item.get("stream") or {}).items()}
            stream_id = stream_id_of(labels)
            for value in item.get("values") or []:
                extra = {}
                if len(value) > 2 and isinstance(value[2], dict):  # structured metadata (Loki 3, categorised)
                    for group in value[2].values():
                        if isinstance(group, dict):
                            extra.update({str(k): str(v) for k, v in group.items()})
                yield make_line(int(value[0]), str(value[1]), labels, stream_id, extra)
    except LogStoreError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        raise store.unreadable() from None


def _ordered(lines, *, newest_first: bool) -> list[LogLine]:
    return sorted(lines, key=lambda line: (ns_of_cursor(line.cursor) or 0, line.cursor), reverse=newest_first)


def _range(store: Store, logql_text: str, start_ns: int, end_ns: int, limit: int, direction: str) -> list[LogLine]:
    answer = store.get_json(
        "/loki/api/v1/query_range",
        {"query": logql_text, "start": str(start_ns), "end": str(end_ns), "limit": str(limit), "direction": direction},
    )
    return _ordered(_streams(store, answer), newest_first=direction == "backward")


def search(endpoint: Endpoint, query: LogQuery) -> Page:
    store = _store(endpoint)
    found = _range(store, logql.render(query), to_ns(query.start), to_ns(query.end), query.limit + 1, "backward")
    more = len(found) > query.limit
    lines = found[: query.limit]
    return Page(lines=lines, more=more, older_than=lines[-1].time if more and lines else None)


def stream(endpoint: Endpoint, query: LogQuery, *, limit: int) -> Iterator[LogLine]:
    """Newest first, a batch at a time: each batch ends where the previous one stopped (Loki's end is exclusive,
    so the boundary nanosecond is asked again and the lines already given at it are skipped)."""
    store = _store(endpoint)
    text = logql.render(query)
    start_ns, end_ns = to_ns(query.start), to_ns(query.end)
    given = 0
    at_boundary: set[str] = set()
    while given < limit:
        batch = _range(store, text, start_ns, end_ns, min(MAX_BATCH, limit - given + len(at_boundary)), "backward")
        fresh = [line for line in batch if line.cursor not in at_boundary]
        if not fresh:
            return
        for line in fresh:
            yield line
            given += 1
            if given >= limit:
                return
        oldest = ns_of_cursor(fresh[-1].cursor) or start_ns
        if oldest <= start_ns or len(batch) < min(MAX_BATCH, limit - given + len(at_boundary)):
            return
        at_boundary = {line.cursor for line in batch if ns_of_cursor(line.cursor) == oldest}
        end_ns = oldest + 1


def poll(endpoint: Endpoint, query: LogQuery, *, after: datetime, seen: set[str], limit: int) -> list[LogLine]:
    store = _store(endpoint)
    now = to_ns(datetime.now(UTC)) + 10**9
    found = _range(store, logql.render(query), to_ns(after), now, limit + len(seen), "forward")
    return [line for line in found if line.cursor not in seen][:limit]


def _unquoted(value: str) -> str | None:
    try:
        return json.loads(f'"{value}"')
    except ValueError:
        return None


def _selector_of(line: LogLine, namespaces: tuple[str, ...]) -> str:
    """The selector of the line's stream: the labels of its stream id (as ``stream_id_of`` wrote them), or the
    namespace, pod and container the caller knows; with the reader's namespaces."""
    labels = {k: _unquoted(v) for k, v in _EQUAL.findall((line.stream_id or "")[:4096])} or {
        k: v for k, v in (line.stream or {}).items() if k in ("namespace", "pod", "container")
    }
    matchers = [f"{k}={logql.quote(v)}" for k, v in sorted(labels.items()) if _LABEL.fullmatch(k) and v is not None]
    if not matchers:
        raise LogStoreError(D(N_("This line can no longer be found.")))
    if namespaces:
        matchers.append(logql.namespace_matcher(namespaces))
    return "{" + ", ".join(matchers) + "}"


def context(endpoint: Endpoint, line: LogLine, *, before: int, after: int, namespaces: tuple[str, ...]):
    store = _store(endpoint)
    selector = _selector_of(line, namespaces)
    anchor = ns_of_cursor(line.cursor) or to_ns(line.time)
    window = int(CONTEXT_WINDOW.total_seconds()) * 10**9
    earlier = _range(store, selector, anchor - window, anchor, before, "backward") if before else []
    later = _range(store, selector, anchor, anchor + window, after + 1, "forward")
    return list(reversed(earlier)), later


def histogram(endpoint: Endpoint, query: LogQuery, *, buckets: int) -> Histogram:
    store = _store(endpoint)
    step = choose_step(query.start, query.end, buckets)
    starts = bucket_starts(query.start, query.end, step)
    metric = f"sum by (level) (count_over_time({logql.render(query)} [{step}s]))"
    # A point at t counts the lines of (t - step, t]: ask for the points that end each bucket.
    answer = store.get_json(
        "/loki/api/v1/query_range",
        {"query": metric, "start": str(starts[0] + step), "end": str(starts[-1] + step), "step": f"{step}s"},
    )
    counts: dict[int, dict[str, int]] = {s: {} for s in starts}
    try:
        for series in answer["data"]["result"] or []:
            level = normalise_level(str((series.get("metric") or {}).get("level", "")))
            for stamp, value in series.get("values") or []:
                bucket = int(float(stamp)) - step
                if bucket in counts and int(float(value)):
                    counts[bucket][level] = counts[bucket].get(level, 0) + int(float(value))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise store.unreadable() from None
    return Histogram(step_seconds=step, buckets=[(datetime.fromtimestamp(s, UTC), counts[s]) for s in starts])


def _selector(query: LogQuery) -> str:
    return "{" + ", ".join(logql.stream_matchers(query)) + "}"


def values(endpoint: Endpoint, field: str, query: LogQuery) -> list[str]:
    store = _store(endpoint)
    answer = store.get_json(
        f"/loki/api/v1/label/{field}/values",
        {"query": _selector(query), "start": str(to_ns(query.start)), "end": str(to_ns(query.end))},
    )
    try:
        found = [str(v)[:253] for v in answer.get("data") or []]
    except (AttributeError, TypeError):
        raise store.unreadable() from None
    return sorted(set(found))[:MAX_VALUES]


def field_names(endpoint: Endpoint, query: LogQuery) -> list[str]:
    store = _store(endpoint)
    answer = store.get_json(
        "/loki/api/v1/labels",
        {"query": _selector(query), "start": str(to_ns(query.start)), "end": str(to_ns(query.end))},
    )
    try:
        return sorted({str(v)[:128] for v in answer.get("data") or []})[:MAX_VALUES]
    except (AttributeError, TypeError):
        raise store.unreadable() from None


def probe(endpoint: Endpoint) -> dict:
    store = _store(endpoint)
    info = store.get_json("/loki/api/v1/status/buildinfo", {}, timeout=3, limit=65536)
    version = str(info.get("version", ""))[:64] if isinstance(info, dict) else ""
    now = datetime.now(UTC)
    lines = _range(store, '{namespace=~".+"}', to_ns(now - timedelta(minutes=5)), to_ns(now) + 1, 1, "backward")
    newest = ns_of_cursor(lines[0].cursor) if lines else None
    lag = max((to_ns(now) - newest) / 1e9, 0.0) if newest else None
    return {"version": version, "lag_seconds": lag}
