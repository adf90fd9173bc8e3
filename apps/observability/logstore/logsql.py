"""LogsQL (VictoriaLogs) from a ``LogQuery``, and the checks a raw LogsQL query passes before it is sent.

The model's fields become filters, each value quoted here (``quote``: a Go-style double-quoted string, which is what
LogsQL's parser unquotes) and never pasted: namespaces as the stream filter ``{namespace in ("a","b")}``, a pod as
``pod:="name"``, a workload's pods as an anchored regular expression of the names Kubernetes gives them, a
container as ``container:="name"``, levels as a case-insensitive anchored regular expression of the words
applications write for them, a phrase as a case-insensitive regular expression with its special characters
escaped, a regular expression as written.

Tenancy for VictoriaLogs does not rest on this text. ``victorialogs.py`` sends the namespaces a person may read
as the ``extra_stream_filters`` query argument, which VictoriaLogs parses separately and ANDs with the query on the
server, including every subquery the query holds: ``union``, ``join``, ``in(...)`` filters and ``stream_context``.
tests/observability/test_logstore_tenancy.py proves this against the real server (v1.52.2) with the usual escapes
(``or``, ``{namespace=~".*"}``, ``_stream:{namespace="other"}``, negation, subqueries in pipes, quotes): each finds
team-b's lines as typed and none once sent as a project member's query. ``REFUSED_PIPES`` is where a pipe found to
escape would be refused; none is today. A raw query is therefore only bounded here (length, nesting, quoting:
``check_raw``), and the model's own filters travel beside it as ``extra_filters``.
"""

from __future__ import annotations

import json
import re

from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.observability.logstore.errors import LogStoreError
from apps.observability.logstore.lines import LEVEL_WORDS
from apps.observability.logstore.query import LogQuery

MAX_NESTING = 32  # brackets open at once in a raw query
MAX_PIPES = 50
REFUSED_PIPES: frozenset[str] = frozenset()  # pipes that would read past extra_stream_filters: none found
_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")
_SAFE = "[bcdfghjklmnpqrstvwxz2456789]"  # Kubernetes' alphabet for generated name suffixes (no vowels, 0, 1, 3)
# What follows a workload's name in its pods' names: a Deployment's <hash>-<suffix>, a DaemonSet's or Job's
# <suffix>, a StatefulSet's <ordinal>.
WORKLOAD_SUFFIX = f"(-{_SAFE}{{1,10}}-{_SAFE}{{5}}|-{_SAFE}{{5}}|-[0-9]+)"


def quote(value: str) -> str:
    """``value`` as a double-quoted LogsQL string (JSON's escapes are a subset of Go's, which LogsQL reads)."""
    return json.dumps(value, ensure_ascii=False)


def literal(value: str) -> str:
    """``value`` matched literally inside a regular expression."""
    return _RE2_SPECIAL.sub(r"\\\1", value)


def level_pattern(levels: tuple[str, ...]) -> str:
    words = [word for level in levels for word in LEVEL_WORDS[level]]
    return "(?i)^(" + "|".join(words) + ")$"


def workload_pattern(workload: str) -> str:
    return f"^{literal(workload)}{WORKLOAD_SUFFIX}$"


def namespace_filter(namespaces: tuple[str, ...] | list[str]) -> str:
    return "{namespace in (" + ",".join(quote(n) for n in namespaces) + ")}"


def filters(query: LogQuery, *, namespaces: bool = True) -> list[str]:
    """The model's filters, ANDed by being written side by side."""
    found = []
    if namespaces and query.namespaces:
        found.append(namespace_filter(query.namespaces))
    if query.pod:
        found.append(f"pod:={quote(query.pod)}")
    if query.workload:
        found.append(f"pod:~{quote(workload_pattern(query.workload))}")
    if query.container:
        found.append(f"container:={quote(query.container)}")
    if query.levels:
        found.append(f"level:~{quote(level_pattern(query.levels))}")
    if query.text:
        found.append(f"_msg:~{quote('(?i)' + literal(query.text))}")
    if query.regex:
        found.append(f"_msg:~{quote(query.regex)}")
    return found


def render(query: LogQuery) -> tuple[str, str]:
    """(query, extra_filters) for /select/logsql/*: the model's filters as the query, or a raw query with the
    model's filters beside it. The namespaces always travel as ``extra_stream_filters`` too (victorialogs.py)."""
    if query.raw:
        check_raw(query.raw)
        return query.raw, " ".join(filters(query, namespaces=False))
    return " ".join(filters(query)) or "*", ""


def _words_outside_strings(text: str) -> tuple[int, list[str]]:
    """The deepest bracket nesting of ``text`` and the words that start each pipe, reading LogsQL's quoting:
    "…" and '…' with backslash escapes, `…` without. An unterminated string is refused."""
    depth = deepest = 0
    quote_char, escaped = "", False
    pipes: list[str] = []
    expecting_pipe = False
    word = []
    for char in text + " ":
        if quote_char:
            if escaped:
                escaped = False
            elif char == "\\" and quote_char != "`":
                escaped = True
            elif char == quote_char:
                quote_char = ""
            continue
        if expecting_pipe:
            if char.isalnum() or char == "_":
                word.append(char)
                continue
            if word or not char.isspace():
                pipes.append("".join(word).lower())
                word, expecting_pipe = [], False
        if char in "\"'`":
            quote_char = char
        elif char in "({[":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")}]":
            depth -= 1
        elif char == "|":
            expecting_pipe = True
    if quote_char:
        raise LogStoreError(D(N_("The query has a string that is not closed (%(quote)s)."), quote=quote_char))
    return deepest, pipes


def check_raw(raw: str) -> str:
    """A raw LogsQL query bounded (characters, nesting, pipes) and free of refused pipes; VictoriaLogs itself says
    what else is wrong with it."""
    if not raw.strip():
        raise LogStoreError(D(N_("Write a LogsQL query.")))
    deepest, pipes = _words_outside_strings(raw)
    if deepest > MAX_NESTING:
        raise LogStoreError(
            D(
                N_("The query nests brackets %(n)s deep; Kubemate runs queries nested at most %(max)s deep."),
                n=deepest,
                max=MAX_NESTING,
            )
        )
    if len(pipes) > MAX_PIPES:
        raise LogStoreError(
            D(N_("The query has %(n)s pipes; Kubemate runs at most %(max)s."), n=len(pipes), max=MAX_PIPES)
        )
    for pipe in pipes:
        if pipe in REFUSED_PIPES:
            raise LogStoreError(
                D(N_("The %(pipe)s pipe is not allowed: Kubemate could not limit it to your namespaces."), pipe=pipe)
            )
    return raw
