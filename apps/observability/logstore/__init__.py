"""The one door to a cluster's log store (VictoriaLogs or Loki, ``Cluster.logs_backend``).

Callers build a ``LogQuery`` (query.py), pass it through ``for_user`` (the namespaces the person may read), and
ask one of the functions below; the backend module (victorialogs.py or loki.py) renders the query in its language
(logsql.py, logql.py) and reads the answer into ``LogLine``/``Page``/``Histogram`` (lines.py). What goes wrong is
a ``LogStoreError`` sentence (errors.py): not configured, not reachable or refusing credentials (``Unreachable``),
the query refused (with the store's own reason) or an answer too large or unreadable. Every request has a timeout,
every answer a size bound (asking.py), and credentials come from ``endpoints.logs`` at the moment of the call.

    query = for_user(request.user, cluster, LogQuery(start=..., end=..., pod="web-1", levels=("error",)))
    page = search(cluster, query)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.observability import endpoints
from apps.observability.logstore import loki, victorialogs
from apps.observability.logstore.errors import LogStoreError, NotConfigured, Unreachable
from apps.observability.logstore.lines import LEVELS, Histogram, LogLine, Page, normalise_level
from apps.observability.logstore.query import MAX_DOWNLOAD, MAX_LIMIT, LogQuery, check, for_user

__all__ = [
    "LEVELS",
    "MAX_DOWNLOAD",
    "MAX_LIMIT",
    "VALUE_FIELDS",
    "Histogram",
    "LogLine",
    "LogQuery",
    "LogStoreError",
    "NotConfigured",
    "Page",
    "Unreachable",
    "backend_name",
    "context",
    "field_names",
    "for_user",
    "histogram",
    "normalise_level",
    "poll",
    "probe",
    "search",
    "stream",
    "values",
]

MAX_BUCKETS = 500
MAX_CONTEXT = 500
MAX_SEEN = 1000
VALUE_FIELDS = ("namespace", "pod", "container", "level", "app")
_BACKENDS = {"victorialogs": victorialogs, "loki": loki}


def _backend(cluster):
    return _BACKENDS.get(getattr(cluster, "logs_backend", "") or "victorialogs", victorialogs)


def backend_name(cluster) -> str:
    """ "VictoriaLogs" or "Loki", for sentences and the status page."""
    return _backend(cluster).NAME


def _endpoint(cluster):
    endpoint = endpoints.logs(cluster)
    if not endpoint.url:
        raise NotConfigured(D(N_("No log store URL is set for this cluster.")))
    return endpoint


def search(cluster, query: LogQuery) -> Page:
    """The newest ``query.limit`` lines of the query's window, newest first; ``more`` when older ones matched."""
    query = check(query)  # a page: at most MAX_LIMIT lines
    return _backend(cluster).search(_endpoint(cluster), query)


def histogram(cluster, query: LogQuery, *, buckets: int = 60) -> Histogram:
    """Lines per time bucket by level over the query's window (about ``buckets`` buckets of a round step)."""
    query = check(query, max_limit=MAX_DOWNLOAD)
    return _backend(cluster).histogram(_endpoint(cluster), query, buckets=max(1, min(int(buckets), MAX_BUCKETS)))


def context(
    cluster, line: LogLine, *, before: int = 10, after: int = 10, namespaces: Iterable[str] = ()
) -> tuple[list[LogLine], list[LogLine]]:
    """The ``before`` lines of the same stream before ``line`` and, from ``line`` itself on, ``after`` + 1 lines
    (both oldest first). ``namespaces`` (when given: a project member's) limits the stream to them in the store
    too; callers still check the lines' namespaces, as the stream id came from the browser."""
    before = max(0, min(int(before), MAX_CONTEXT))
    after = max(0, min(int(after), MAX_CONTEXT))
    names = tuple(namespaces)
    return _backend(cluster).context(_endpoint(cluster), line, before=before, after=after, namespaces=names)


def poll(cluster, query: LogQuery, *, after: datetime, seen: set[str] | None = None, limit: int = 500) -> list[LogLine]:
    """Lines at or after ``after`` (oldest first, at most ``limit``), without those whose cursor is in ``seen``
    (the lines already shown at ``after``'s instant): the live tail's short poll."""
    query = check(query, max_limit=MAX_DOWNLOAD)
    seen = set(list(seen or ())[:MAX_SEEN])
    limit = max(1, min(int(limit), MAX_LIMIT))
    return _backend(cluster).poll(_endpoint(cluster), query, after=after, seen=seen, limit=limit)


def stream(cluster, query: LogQuery, *, limit: int) -> Iterator[LogLine]:
    """Lines newest first for a download, at most ``limit``, read as they come (never all held in memory). Errors
    are raised when the first line is asked for, or midway (the download then ends with the sentence)."""
    query = check(query, max_limit=MAX_DOWNLOAD)
    limit = max(1, min(int(limit), MAX_DOWNLOAD))
    endpoint = _endpoint(cluster)
    return _backend(cluster).stream(endpoint, query, limit=limit)


def values(cluster, field: str, query: LogQuery) -> list[str]:
    """The values of ``field`` (one of VALUE_FIELDS) in the query's window and namespaces, sorted, bounded; levels
    normalised."""
    if field not in VALUE_FIELDS:
        raise LogStoreError(D(N_("Kubemate does not list the values of %(field)s."), field=str(field)[:64]))
    query = check(query, max_limit=MAX_DOWNLOAD)
    found = _backend(cluster).values(_endpoint(cluster), field, query)
    if field == "level":
        return [level for level in LEVELS if level in {normalise_level(v) for v in found}]
    return found


def field_names(cluster, query: LogQuery) -> list[str]:
    """The field (VictoriaLogs) or label (Loki) names of the query's lines, sorted, bounded."""
    query = check(query, max_limit=MAX_DOWNLOAD)
    return _backend(cluster).field_names(_endpoint(cluster), query)


def probe(cluster) -> dict:
    """{"version": ..., "lag_seconds": ...} for the status page (lag None when no line came in 5 minutes)."""
    return _backend(cluster).probe(_endpoint(cluster))
