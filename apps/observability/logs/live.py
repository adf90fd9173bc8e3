"""Around the search: the lines before and after one line of the same stream (the "show context" partial), and
the live tail's polls.

Why the live tail polls instead of streaming (server-sent events): the console runs under gunicorn with gthread
workers (8 threads each in deploy/local/demo). An open event stream holds one of those threads for as long as the
tab stays open, so eight people following logs would leave a worker no thread for anyone else. A poll holds a
thread for the few milliseconds the store takes to answer "what came after this cursor", then lets it go; the
browser asks once a second (static/kubemate/logs.js), which is as live as a person reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts import access
from apps.accounts.capabilities import LOGS_VIEW
from apps.observability import logstore
from apps.observability.logs.services import CUSTOM, Search, SearchRefused, Window, parse_time, query_of, shaper_for
from apps.observability.logs.shaping import Shown, stream_value

TAIL_LIMIT = 500  # lines one poll of the live tail brings at most
SEEN_MAX = 200  # cursors a poll carries of the lines it already showed at the newest time
CONTEXT_LINES = 10


# Context around one line ---------------------------------------------------------------------------------------


@dataclass
class Context:
    lines: list[Shown] = field(default_factory=list)
    sentence: str = ""


def context(user, search: Search, params) -> Context:
    """Lines before and after one line of the same stream, the line itself marked; only lines the person may read."""
    answer = Context()
    cluster = search.cluster
    if not cluster.logs_url:
        answer.sentence = _("No log store is set for this cluster.")
        return answer
    moment = parse_time(params.get("time"))
    stream_id = str(params.get("stream_id") or "")[:200]
    if moment is None or not stream_id:
        answer.sentence = _("This line can no longer be found.")
        return answer
    held = access.visible_namespaces(user, LOGS_VIEW, cluster=cluster)
    stream = {k: str(params.get(k) or "") for k in ("namespace", "pod", "container") if params.get(k)}
    if held is not None and stream.get("namespace") not in held:
        answer.sentence = _("You may not read the logs of this stream.")
        return answer
    anchor = logstore.LogLine(
        time=moment,
        line="",
        stream=stream,
        stream_id=stream_id,
        level="",
        fields={},
        trace_id="",
        cursor=str(params.get("cursor") or "")[:500],
    )
    try:
        before, after = logstore.context(
            cluster, anchor, before=CONTEXT_LINES, after=CONTEXT_LINES, namespaces=sorted(held or ())
        )
    except logstore.LogStoreError as exc:
        answer.sentence = str(exc)
        return answer
    found = [*before, *after]  # both oldest first
    # The store is asked by stream id, which the person sent: every line it gives back must be theirs to read.
    if held is not None and any(stream_value(line.stream or {}, "namespace") not in held for line in found):
        answer.sentence = _("You may not read the logs of this stream.")
        return answer
    shaper = shaper_for(user, search)
    answer.lines = [shaper.shape(line) for line in found]
    mark = next((s for s in answer.lines if s.cursor and s.cursor == anchor.cursor), None)
    if mark is not None:
        mark.anchor = True
    return answer


# The live tail -------------------------------------------------------------------------------------------------


@dataclass
class Tail:
    lines: list[Shown] = field(default_factory=list)  # oldest first
    after: str = ""
    seen: list[str] = field(default_factory=list)
    sentence: str = ""


def tail(user, search: Search, *, after: str, seen: list[str]) -> Tail:
    """The lines that arrived after the cursor (the newest time shown, and the lines shown at that time)."""
    since = parse_time(after) or timezone.now()
    answer = Tail(after=since.isoformat(), seen=list(seen)[:SEEN_MAX])
    cluster = search.cluster
    if search.problems:
        answer.sentence = " ".join(search.problems)
        return answer
    if not cluster.logs_url:
        answer.sentence = _("No log store is set for this cluster, so there is no live tail.")
        return answer
    try:
        window = Window(CUSTOM, since, max(timezone.now(), since + timedelta(seconds=1)))
        query = query_of(user, replace(search, window=window), limit=TAIL_LIMIT)
        lines = logstore.poll(cluster, query, after=since, seen=set(answer.seen), limit=TAIL_LIMIT)
    except (SearchRefused, logstore.LogStoreError) as exc:
        answer.sentence = str(exc)
        return answer
    if not lines:
        return answer
    newest = max(line.time for line in lines)
    at_newest = [line.cursor for line in lines if line.time == newest and line.cursor]
    if newest == since:
        at_newest = list(dict.fromkeys([*answer.seen, *at_newest]))
    answer.after, answer.seen = newest.isoformat(), at_newest[-SEEN_MAX:]
    shaper = shaper_for(user, search)
    answer.lines = [shaper.shape(line) for line in lines]
    return answer
