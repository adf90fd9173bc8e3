"""VictoriaLogs' HTTP query API (``/select/logsql/*``), the backend of the log store door for
``Cluster.logs_backend == "victorialogs"``. Tested against a real VictoriaLogs (tests/plugins/victorialogs.py).

Every request carries the query's namespaces twice: in the query text (``logsql.render``) and as the
``extra_stream_filters`` argument, which VictoriaLogs parses on its own and ANDs with the whole query, subqueries
included; that argument is what keeps a raw query a person typed inside their namespaces (logsql.py says why).
The tenant "account:project" (or "account") goes in the ``AccountID``/``ProjectID`` headers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.observability.endpoints import Endpoint
from apps.observability.logstore import asking, logsql
from apps.observability.logstore.asking import Store
from apps.observability.logstore.errors import LogStoreError
from apps.observability.logstore.lines import (
    Histogram,
    LogLine,
    Page,
    make_line,
    normalise_level,
    ns_of_cursor,
    parse_rfc3339_ns,
    rfc3339,
    to_ns,
)
from apps.observability.logstore.query import LogQuery

NAME = "VictoriaLogs"
MISSING_MSG = "missing _msg field"  # what VictoriaLogs stores as _msg when a JSON line it parsed had no message key
STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
MAX_VALUES = 500
CONTEXT_WINDOW = timedelta(days=1)  # neighbours of a line are looked for this far before and after it
_STREAM_PAIR = re.compile(r'([^{}=,\s"]+)="((?:[^"\\]|\\.)*)"')
_STREAM_ID = re.compile(r"[0-9a-f]{16,64}")
_VERSION = re.compile(rb'vm_app_version\{[^}]*short_version="([^"]{1,64})"')


def _store(endpoint: Endpoint) -> Store:
    headers = {}
    if endpoint.tenant:
        account, _, project = endpoint.tenant.partition(":")
        headers = {"AccountID": account.strip() or "0", "ProjectID": project.strip() or "0"}
    return Store(endpoint, NAME, headers)


def _params(query: LogQuery, text: str, *, extra: str = "", start_ns: int | None, end_ns: int | None) -> dict:
    params = {"query": text}
    if extra:
        params["extra_filters"] = extra
    if query.namespaces:
        params["extra_stream_filters"] = logsql.namespace_filter(query.namespaces)
    if start_ns is not None:
        params["start"] = rfc3339(start_ns)
    if end_ns is not None:
        params["end"] = rfc3339(end_ns)
    return params


def _window(query: LogQuery) -> tuple[int, int]:
    return to_ns(query.start), to_ns(query.end) - 1  # VictoriaLogs' end is inclusive, the model's is not


def _unquote(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), value)


@lru_cache(maxsize=1024)
def _stream_pairs(text: str) -> tuple[tuple[str, str], ...]:
    """The labels of a ``_stream`` text; remembered, since a page's lines come from a few streams."""
    return tuple((k, _unquote(v) if "\\" in v else v) for k, v in _STREAM_PAIR.findall(text))


def _stream_labels(text: str) -> dict[str, str]:
    return dict(_stream_pairs(text[:4096]))


def line_of(row: dict) -> LogLine | None:
    """A row of /select/logsql/query as a LogLine; None for a row without a time (a stats pipe's answer)."""
    try:
        ns = parse_rfc3339_ns(str(row.get("_time", "")))
    except ValueError:
        return None
    stream = _stream_labels(str(row.get("_stream", "")))
    for key in ("namespace", "pod", "container"):
        if key not in stream and isinstance(row.get(key), str):
            stream[key] = row[key]
    extra = {
        str(k): v if isinstance(v, str) else str(v)
        for k, v in row.items()
        if not str(k).startswith("_") and k not in stream
    }
    text = row.get("_msg")
    if not isinstance(text, str) or text.startswith(MISSING_MSG):
        # VictoriaLogs parsed a JSON line into fields and kept no message: show the fields as the line.
        text = " ".join(f"{k}={v}" for k, v in list(extra.items())[:64])
    return make_line(ns, text, stream, str(row.get("_stream_id", ""))[:64], extra)


def _lines(store: Store, params: dict) -> Iterator[LogLine]:
    for row in store.get_rows("/select/logsql/query", params, limit=asking.MAX_ANSWER_BYTES):
        line = line_of(row)
        if line is not None:
            yield line


def _newest_first(lines: list[LogLine]) -> list[LogLine]:
    return sorted(lines, key=lambda line: (ns_of_cursor(line.cursor) or 0, line.cursor), reverse=True)


def rows(endpoint: Endpoint, query: LogQuery) -> list[dict]:
    """The rows of a query exactly as VictoriaLogs answers the door's request (a stats pipe's rows included): the
    tenancy tests look at these, not only at the lines ``search`` makes of them."""
    text, extra = logsql.render(query)
    start_ns, end_ns = _window(query)
    params = _params(query, f"{text}\n| limit {query.limit}", extra=extra, start_ns=start_ns, end_ns=end_ns)
    return list(_store(endpoint).get_rows("/select/logsql/query", params, limit=asking.MAX_ANSWER_BYTES))


def search(endpoint: Endpoint, query: LogQuery) -> Page:
    text, extra = logsql.render(query)
    start_ns, end_ns = _window(query)
    params = _params(
        query,
        f"{text}\n| sort by (_time desc) | limit {query.limit + 1}",
        extra=extra,
        start_ns=start_ns,
        end_ns=end_ns,
    )
    found = _newest_first(list(_lines(_store(endpoint), params)))
    more = len(found) > query.limit
    lines = found[: query.limit]
    return Page(lines=lines, more=more, older_than=lines[-1].time if more and lines else None)


def stream(endpoint: Endpoint, query: LogQuery, *, limit: int) -> Iterator[LogLine]:
    """Newest first, read row by row from one sorted answer (VictoriaLogs keeps the ``limit`` newest while it
    sorts; this side holds one row at a time)."""
    text, extra = logsql.render(query)
    start_ns, end_ns = _window(query)
    params = _params(
        query, f"{text}\n| sort by (_time desc) | limit {limit}", extra=extra, start_ns=start_ns, end_ns=end_ns
    )
    store = _store(endpoint)
    count = 0
    for row in store.get_rows("/select/logsql/query", params, timeout=60):
        line = line_of(row)
        if line is None:
            continue
        yield line
        count += 1
        if count >= limit:
            return


def poll(endpoint: Endpoint, query: LogQuery, *, after: datetime, seen: set[str], limit: int) -> list[LogLine]:
    text, extra = logsql.render(query)
    params = _params(
        query, f"{text}\n| sort by (_time) | limit {limit + len(seen)}", extra=extra, start_ns=to_ns(after), end_ns=None
    )
    found = [line for line in _lines(_store(endpoint), params) if line.cursor not in seen]
    return sorted(found, key=lambda line: (ns_of_cursor(line.cursor) or 0, line.cursor))[:limit]


def context(endpoint: Endpoint, line: LogLine, *, before: int, after: int, namespaces: tuple[str, ...]):
    """The ``before`` lines of the line's stream before it (oldest first), and the line with the ``after`` lines
    following it."""
    if not _STREAM_ID.fullmatch(line.stream_id or ""):
        raise LogStoreError(D(N_("This line can no longer be found.")))
    anchor = ns_of_cursor(line.cursor) or to_ns(line.time)
    window = int(CONTEXT_WINDOW.total_seconds()) * 10**9
    scoped = LogQuery(start=line.time, end=line.time + timedelta(seconds=1), namespaces=namespaces)
    store = _store(endpoint)
    selector = f"_stream_id:{line.stream_id}"
    older = _params(
        scoped, f"{selector} | sort by (_time desc) | limit {before}", start_ns=anchor - window, end_ns=anchor - 1
    )
    newer = _params(
        scoped, f"{selector} | sort by (_time) | limit {after + 1}", start_ns=anchor, end_ns=anchor + window
    )
    earlier = list(reversed(_newest_first(list(_lines(store, older))))) if before else []
    later = sorted(_lines(store, newer), key=lambda found: (ns_of_cursor(found.cursor) or 0, found.cursor))
    return earlier, later


def choose_step(start: datetime, end: datetime, buckets: int) -> int:
    span = max((end - start).total_seconds(), 1)
    wanted = math.ceil(span / max(buckets, 1))
    return next((step for step in STEPS if step >= wanted), math.ceil(wanted / 86400) * 86400)


def bucket_starts(start: datetime, end: datetime, step: int) -> list[int]:
    first = int(start.timestamp()) // step * step
    last = math.ceil(end.timestamp())
    return list(range(first, last, step))


def histogram(endpoint: Endpoint, query: LogQuery, *, buckets: int) -> Histogram:
    text, extra = logsql.render(query)
    step = choose_step(query.start, query.end, buckets)
    start_ns, end_ns = _window(query)
    params = _params(query, text, extra=extra, start_ns=start_ns, end_ns=end_ns)
    params.update(step=f"{step}s", field="level")
    store = _store(endpoint)
    answer = store.get_json("/select/logsql/hits", params)
    starts = bucket_starts(query.start, query.end, step)
    counts: dict[int, dict[str, int]] = {s: {} for s in starts}
    try:
        for group in answer.get("hits") or []:
            level = normalise_level(str((group.get("fields") or {}).get("level", "")))
            for stamp, value in zip(group.get("timestamps") or [], group.get("values") or [], strict=False):
                second = parse_rfc3339_ns(stamp) // 10**9
                bucket = second // step * step
                if bucket in counts and int(value):
                    counts[bucket][level] = counts[bucket].get(level, 0) + int(value)
    except (AttributeError, TypeError, ValueError):
        raise store.unreadable() from None
    return Histogram(
        step_seconds=step,
        buckets=[(datetime.fromtimestamp(s, UTC), counts[s]) for s in starts],
    )


def values(endpoint: Endpoint, field: str, query: LogQuery) -> list[str]:
    text, extra = logsql.render(query)
    start_ns, end_ns = _window(query)
    params = _params(query, text, extra=extra, start_ns=start_ns, end_ns=end_ns)
    params.update(field=field, limit=str(MAX_VALUES))
    store = _store(endpoint)
    answer = store.get_json("/select/logsql/field_values", params)
    try:
        found = [str(item["value"])[:253] for item in answer.get("values") or []]
    except (AttributeError, TypeError, KeyError):
        raise store.unreadable() from None
    return sorted({v for v in found if v})[:MAX_VALUES]


def field_names(endpoint: Endpoint, query: LogQuery) -> list[str]:
    text, extra = logsql.render(query)
    start_ns, end_ns = _window(query)
    store = _store(endpoint)
    answer = store.get_json(
        "/select/logsql/field_names", _params(query, text, extra=extra, start_ns=start_ns, end_ns=end_ns)
    )
    try:
        return sorted({str(item["value"])[:128] for item in answer.get("values") or []})[:MAX_VALUES]
    except (AttributeError, TypeError, KeyError):
        raise store.unreadable() from None


def probe(endpoint: Endpoint) -> dict:
    """The version (from /metrics) and the ingestion lag: seconds since the newest line of the last 5 minutes."""
    store = _store(endpoint)
    body = store.get_bytes("/metrics", {}, timeout=3, limit=4 * 1024 * 1024)
    match = _VERSION.search(body)
    version = match.group(1).decode(errors="replace") if match else ""
    now = datetime.now(UTC)
    newest = None
    for row in store.get_rows(
        "/select/logsql/query", {"query": "_time:5m | stats max(_time) as newest"}, timeout=3, limit=65536
    ):
        try:
            newest = parse_rfc3339_ns(str(row.get("newest", "")))
        except ValueError:
            newest = None
    lag = max((to_ns(now) - newest) / 1e9, 0.0) if newest else None
    return {"version": version, "lag_seconds": lag}
