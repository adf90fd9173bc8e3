"""LogQL (Loki) from a ``LogQuery``, and a raw LogQL query narrowed to a person's namespaces.

Loki has no permissions of its own within a tenant: a query reads every stream its selectors match. In LogQL, and
only there, data is read through stream selectors ``{…}``: log queries start with one, metric queries wrap log
queries (``count_over_time({…}[5m])``), binary operators combine such queries, and nothing else names streams
(braces elsewhere, as in ``line_format "{{.x}}"``, sit inside strings). So ``scope`` reads the query with a
tokenizer that knows LogQL's strings (``"…"`` with backslash escapes, ```…``` without; ``#`` comments and single
quotes are refused, so no text is read one way here and another way by Loki), finds every selector, reads its
matchers (``name op string``), and writes each back with one more matcher: ``namespace="a"`` or
``namespace=~"^(a|b)$"`` (namespaces are checked DNS labels, escaped anyway). All matchers of a selector must hold,
so a person's own ``namespace`` matchers (``=~".*"``, ``!="mine"``) stay and can only narrow. Anything the tokenizer
does not understand (a brace outside a selector, a selector it cannot read, an unclosed string, too deep or too
many) is refused rather than guessed at. Strings are copied as written: the tokenizer ends them exactly where Loki's
lexer does (Go's rules), so a quote or backslash in a value cannot end a string early.

``render`` builds the same shape from the model: a selector (namespace, pod or a workload's pods, container), then
line filters (a phrase as a case-insensitive escaped regular expression, a regular expression) and a level filter as
a label filter (``| level=~"(?i)^(error|err|…)$"``, so it works whether ``level`` is a stream label, structured
metadata or parsed).
"""

from __future__ import annotations

import json
import re

from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.observability.logstore.errors import LogStoreError
from apps.observability.logstore.logsql import level_pattern, literal, workload_pattern
from apps.observability.logstore.query import LogQuery

MAX_NESTING = 32
MAX_SELECTORS = 50
METRIC_QUERY = N_(
    "This LogQL query counts lines (a metric query), and the search shows lines: write a log query that starts with "
    'a stream selector such as {app="web"}.'
)
TOO_DEEP = N_("The query nests brackets %(n)s deep; Kubemate runs queries nested at most %(max)s deep.")
MAX_MATCHERS = 32  # matchers of one selector
_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_OPS = ("=~", "!~", "!=", "=")


def quote(value: str) -> str:
    """``value`` as a double-quoted LogQL string (Go's escapes; JSON's are a subset)."""
    return json.dumps(value, ensure_ascii=False)


def namespace_matcher(namespaces) -> str:
    namespaces = list(namespaces)
    if not namespaces:
        return 'namespace=~".+"'
    if len(namespaces) == 1:
        return f"namespace={quote(namespaces[0])}"
    return f"namespace=~{quote('^(' + '|'.join(literal(n) for n in namespaces) + ')$')}"


def stream_matchers(query: LogQuery, *, namespaces: bool = True) -> list[str]:
    found = [namespace_matcher(query.namespaces)] if namespaces or query.namespaces else []
    if query.pod:
        found.append(f"pod={quote(query.pod)}")
    if query.workload:
        found.append(f"pod=~{quote(workload_pattern(query.workload))}")
    if query.container:
        found.append(f"container={quote(query.container)}")
    return found


def pipeline(query: LogQuery) -> str:
    stages = []
    if query.text:
        stages.append(f"|~ {quote('(?i)' + literal(query.text))}")
    if query.regex:
        stages.append(f"|~ {quote(query.regex)}")
    if query.levels:
        stages.append(f"| level=~{quote(level_pattern(query.levels))}")
    return " ".join(stages)


def render(query: LogQuery) -> str:
    """A LogQL log query for the model; a raw query scoped to the model's namespaces (and pod, workload,
    container) in every selector, with the model's line and level filters after it."""
    if query.raw:
        scoped = scope(query.raw, query.namespaces, extra=stream_matchers(query, namespaces=False)[1:])
        if not is_log_query(scoped):
            raise LogStoreError(D(METRIC_QUERY))
        tail = pipeline(query)
        return f"{scoped} {tail}" if tail else scoped
    selector = "{" + ", ".join(stream_matchers(query)) + "}"
    tail = pipeline(query)
    return f"{selector} {tail}" if tail else selector


def is_log_query(query: str) -> bool:
    return query.lstrip().startswith("{")


# Raw LogQL ----------------------------------------------------------------------------------------------------


def _unreadable(reason: str) -> LogStoreError:
    return LogStoreError(
        D(N_("Kubemate could not read this LogQL query (%(reason)s), so it is not run."), reason=reason)
    )


def _string_end(text: str, start: int) -> int:
    """The index after the string that starts at ``start`` (Go's rules: "…" with escapes, `…` raw)."""
    quote_char = text[start]
    i = start + 1
    while i < len(text):
        char = text[i]
        if quote_char == '"' and char == "\\":
            i += 2
            continue
        if quote_char == '"' and char == "\n":
            break
        if char == quote_char:
            return i + 1
        i += 1
    raise _unreadable(N_("a string is not closed"))


def _selector(text: str, start: int) -> tuple[list[str], int]:
    """The matchers (as written) of the selector whose ``{`` is at ``start``, and the index after its ``}``."""
    matchers: list[str] = []
    i = start + 1
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i < len(text) and text[i] == "}":
            return matchers, i + 1
        name = _NAME.match(text, i)
        if not name:
            raise _unreadable(N_("a stream selector holds something other than label matchers"))
        i = name.end()
        while i < len(text) and text[i].isspace():
            i += 1
        op = next((op for op in _OPS if text.startswith(op, i)), None)
        if op is None:
            raise _unreadable(N_("a label matcher has no operator"))
        i += len(op)
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text) or text[i] not in '"`':
            raise _unreadable(N_("a label matcher's value is not a string"))
        end = _string_end(text, i)
        matchers.append(f"{name.group(0)}{op}{text[i:end]}")
        if len(matchers) > MAX_MATCHERS:
            raise _unreadable(N_("a stream selector has too many matchers"))
        i = end
        while i < len(text) and text[i].isspace():
            i += 1
        if i < len(text) and text[i] == ",":
            i += 1
        elif i >= len(text) or text[i] != "}":
            raise _unreadable(N_("a stream selector is not closed"))


def scope(query: str, namespaces, *, extra: list[str] | None = None) -> str:
    """``query`` with the namespace matcher (and ``extra`` matchers) added to every stream selector.

    ``namespaces`` empty means every namespace (a whole-cluster reader): the query is read and bounded all the
    same, and the selectors get ``extra`` only.
    """
    if not query.strip():
        raise LogStoreError(D(N_("Write a LogQL query.")))
    added = ([namespace_matcher(namespaces)] if namespaces else []) + list(extra or [])
    out: list[str] = []
    i = depth = selectors = 0
    while i < len(query):
        char = query[i]
        if char in '"`':
            end = _string_end(query, i)
            out.append(query[i:end])
            i = end
        elif char == "#":  # a comment to Loki, whose end this tokenizer would have to guess around strings
            raise _unreadable(N_("comments (#) are not run"))
        elif char == "{":
            matchers, i = _selector(query, i)
            selectors += 1
            if selectors > MAX_SELECTORS:
                raise _unreadable(N_("too many stream selectors"))
            out.append("{" + ", ".join(matchers + added) + "}")
        elif char == "}":
            raise _unreadable(N_("a closing brace without its stream selector"))
        elif char == "'":  # not a LogQL string; Go's lexer would read a character literal where this one cannot
            raise _unreadable(N_("single quotes are not LogQL strings"))
        else:
            if char in "([":
                depth += 1
                if depth > MAX_NESTING:
                    raise LogStoreError(
                        D(
                            TOO_DEEP,
                            n=depth,
                            max=MAX_NESTING,
                        )
                    )
            elif char in ")]":
                depth -= 1
            out.append(char)
            i += 1
    if not selectors:
        raise _unreadable(N_("it has no stream selector"))
    return "".join(out)
