"""What a person asks the log store, bounded, and narrowed to the namespaces they may read.

``LogQuery`` is the one query model both backends render (``logsql.render`` for VictoriaLogs, ``logql.render`` for
Loki): a window, namespaces, a pod or a workload's pods, a container, levels, a phrase, a regular expression, or a
raw query typed by someone who holds ``logs.query``. Values are never pasted into a query: ``check`` refuses what
no Kubernetes object can be named before a renderer quotes it for its language.

Tenancy starts here. ``for_user`` returns the query with ``namespaces`` set to exactly what the person may read
(all of them when they hold the capability in the whole cluster, which is the one case that leaves
``namespaces`` empty); asking for a namespace outside that set is refused with a sentence, as is a person who may
read no namespace of the cluster. The renderers then put those namespaces into every stream selector (Loki) or
into VictoriaLogs' server-enforced ``extra_stream_filters``; see their module docstrings for why that holds for
raw queries too.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from apps.accounts import access
from apps.accounts.capabilities import LOGS_QUERY, LOGS_VIEW
from apps.clusters.values import is_dns_label, is_dns_subdomain
from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.observability.logstore.errors import LogStoreError
from apps.observability.logstore.lines import LEVEL_WORDS, normalise_level

MAX_LIMIT = 5000  # lines of one page; downloads read more through stream(), a batch at a time
MAX_DOWNLOAD = 1_000_000  # lines one download may ask for
MAX_RAW_CHARS = 4000
MAX_TEXT_CHARS = 500
MAX_REGEX_CHARS = 1000
MAX_NAMESPACES = 500
MAX_WINDOW = timedelta(days=400)
_WHITESPACE = frozenset("\t\n\r")


@dataclass(frozen=True)
class LogQuery:
    start: datetime  # aware, UTC
    end: datetime
    namespaces: tuple[str, ...] = ()  # () = every namespace (for_user leaves it so only for whole-cluster readers)
    pod: str = ""  # exact pod name
    workload: str = ""  # its pods, by the names Kubernetes gives them
    container: str = ""
    levels: tuple[str, ...] = ()  # error, warn, info, debug
    text: str = ""  # a phrase, case-insensitive
    regex: str = ""  # RE2, on the line
    raw: str = ""  # LogsQL or LogQL typed by someone with logs.query
    limit: int = 200


def _refuse(msgid: str, **params) -> LogStoreError:
    return LogStoreError(D(msgid, **params))


def _no_control(value: str, sentence: str) -> None:
    # Control, invisible (format) and lone surrogate characters: none belongs in a search, and U+2063 would make a
    # parameter of these sentences read as a stored sentence (apps.core.deferred.MARK).
    for char in value:
        if char not in _WHITESPACE and unicodedata.category(char) in ("Cc", "Cf", "Cs"):
            raise _refuse(sentence, code=f"{ord(char):04X}")


def check(query: LogQuery, *, max_limit: int = MAX_LIMIT) -> LogQuery:
    """The query with its levels normalised, or a LogStoreError saying what is wrong with it."""
    if not isinstance(query.start, datetime) or not isinstance(query.end, datetime):
        raise _refuse(N_("The time range of the search is not valid."))
    if query.start.tzinfo is None or query.end.tzinfo is None or query.start >= query.end:
        raise _refuse(N_("The time range of the search is not valid."))
    if query.end - query.start > MAX_WINDOW:
        raise _refuse(N_("Search at most %(days)s days at once."), days=MAX_WINDOW.days)
    if not 1 <= int(query.limit) <= max_limit:
        raise _refuse(N_("Ask for between 1 and %(max)s lines."), max=max_limit)
    if len(query.namespaces) > MAX_NAMESPACES or not all(is_dns_label(n) for n in query.namespaces):
        raise _refuse(N_("A namespace of the search is not a valid namespace name."))
    for value in (query.pod, query.workload):
        if value and not is_dns_subdomain(value):
            raise _refuse(N_("%(name)s is not a valid pod or workload name."), name=value[:80])
    if query.container and not is_dns_label(query.container):
        raise _refuse(N_("%(name)s is not a valid container name."), name=query.container[:80])
    levels = tuple(dict.fromkeys(normalise_level(level) for level in query.levels))
    if "" in levels or len(query.levels) > len(LEVEL_WORDS) * 4:
        raise _refuse(N_("Choose levels among error, warn, info and debug."))
    if len(query.text) > MAX_TEXT_CHARS:
        raise _refuse(N_("Search for at most %(max)s characters of text."), max=MAX_TEXT_CHARS)
    if len(query.regex) > MAX_REGEX_CHARS:
        raise _refuse(N_("The regular expression is longer than %(max)s characters."), max=MAX_REGEX_CHARS)
    if len(query.raw) > MAX_RAW_CHARS:
        raise _refuse(
            N_("The query is %(n)s characters long; Kubemate runs queries of at most %(max)s characters."),
            n=len(query.raw),
            max=MAX_RAW_CHARS,
        )
    _no_control(query.text, N_("The text holds an invisible or control character (U+%(code)s); remove it."))
    _no_control(
        query.regex, N_("The regular expression holds an invisible or control character (U+%(code)s); remove it.")
    )
    _no_control(query.raw, N_("The query holds an invisible or control character (U+%(code)s); remove it."))
    return replace(query, levels=levels, limit=int(query.limit))


def for_user(user, cluster, query: LogQuery, *, capability: str = LOGS_VIEW) -> LogQuery:
    """The query ``user`` may run in ``cluster``: checked, and limited to the namespaces where they hold
    ``capability`` (and ``logs.query`` too, for a raw query). Namespaces asked for outside those are refused."""
    query = check(query, max_limit=MAX_DOWNLOAD)
    allowed = access.visible_namespaces(user, capability, cluster=cluster)
    if query.raw:
        typed = access.visible_namespaces(user, LOGS_QUERY, cluster=cluster)
        if typed is not None and not typed:
            raise _refuse(N_("You may not run log queries in this cluster."))
        allowed = typed if allowed is None else (allowed if typed is None else allowed & typed)
    if allowed is None:
        return query
    if not allowed:
        raise _refuse(N_("You may not read the logs of any namespace in this cluster."))
    if query.namespaces:
        foreign = sorted(set(query.namespaces) - allowed)
        if foreign:
            raise _refuse(N_("You may not read the logs of namespace %(namespace)s."), namespace=foreign[0])
        return query
    return replace(query, namespaces=tuple(sorted(allowed)))
