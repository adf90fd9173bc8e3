"""A search's lines as a file (text or NDJSON), streamed as the store answers, at most the limit the person chose,
and audited: reading logs changes nothing, but a bank wants to know who took a copy of which logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core import audit
from apps.core.deferred import in_installation_language
from apps.observability import logstore
from apps.observability.logs.services import Search, SearchRefused, query_of
from apps.observability.logs.shaping import level_of, stream_value

# Downloads -----------------------------------------------------------------------------------------------------


def download_name(search: Search, fmt: str, when: datetime | None = None) -> str:
    stamp = timezone.localtime(when or timezone.now()).strftime("%Y%m%d-%H%M%S")
    place = "_".join(p for p in (search.cluster.name, search.namespace, search.pod or search.workload) if p)
    return f"logs_{place}_{stamp}.{'ndjson' if fmt == 'ndjson' else 'log'}"


def download(user, search: Search, *, limit: int, fmt: str, request=None) -> Iterator[bytes]:
    """The lines of a search as a file, at most ``limit``; refusals are raised before the first chunk. When the file
    ends (or the reader goes away) one audit event names the filters and how many lines were sent."""
    if search.problems:
        raise SearchRefused(" ".join(search.problems))
    if not search.cluster.logs_url:
        raise SearchRefused(_("No log store is set for this cluster, so there is nothing to download."))
    query = query_of(user, search, limit=limit)
    lines = iter(logstore.stream(search.cluster, query, limit=limit))
    first = next(lines, None)  # the store's refusal (LogStoreError) shows on the page, not inside a file
    # Worded now: the file is written after the view has returned, outside the request's language and zone.
    head = _head(search, limit, fmt)
    return _file(user, search, lines, first, head=head, limit=limit, fmt=fmt, request=request)


def _file(user, search: Search, lines, first, *, head: bytes, limit: int, fmt: str, request) -> Iterator[bytes]:
    count, complete, error = 0, False, ""
    try:
        yield head
        pending = [] if first is None else [first]
        for line in _chain(pending, lines):
            if count >= limit:
                break
            count += 1
            yield _file_line(line, fmt)
        complete = True
    except logstore.LogStoreError as exc:
        error = in_installation_language(exc.stored)
        yield (f"# {error}\n" if fmt != "ndjson" else json.dumps({"error": error}, ensure_ascii=False) + "\n").encode()
    finally:
        audit.record(
            actor=user,
            action="observability.logs.download",
            cluster=search.cluster.name,
            namespace=search.namespace,
            kind="Pod" if search.pod else "",
            name=search.pod,
            detail={
                "filters": search.filters(),
                "limit": limit,
                "format": fmt,
                "count": count,
                "complete": complete,
                **({"error": error} if error else {}),
            },
            request=request,
        )


def _chain(first: list, rest) -> Iterator:
    yield from first
    yield from rest


def _head(search: Search, limit: int, fmt: str) -> bytes:
    filters = search.filters()
    if fmt == "ndjson":
        return (json.dumps({"kubemate": {"limit": limit, "query": filters}}, ensure_ascii=False) + "\n").encode()
    words = ", ".join(f"{k}={v if isinstance(v, str) else ','.join(v)}" for k, v in filters.items())
    head = _("Kubemate log download, at most %(limit)s lines: %(filters)s") % {"limit": f"{limit:,}", "filters": words}
    return f"# {head}\n".encode()


def _file_line(line, fmt: str) -> bytes:
    stream = line.stream or {}
    where = "/".join(stream_value(stream, k) for k in ("namespace", "pod", "container"))
    if fmt == "ndjson":
        record = {
            "time": line.time.isoformat() if line.time else None,
            "level": level_of(line.level),
            "stream": stream,
            "line": line.line,
            **({"trace_id": line.trace_id} if getattr(line, "trace_id", "") else {}),
        }
        return (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode()
    stamp = line.time.isoformat() if line.time else "-"
    text = str(line.line).replace("\n", "\\n")
    return f"{stamp} {level_of(line.level) or '-'} {where} {text}\n".encode()
