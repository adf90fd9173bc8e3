"""PromQL a person may run: bounded, parsed, and narrowed to the namespaces they may see (issue 13, tenancy).

PromQL has no permissions of its own: a query reads every series its selectors match. So every query a person who
sees only some namespaces runs, ready-made or typed, goes through ``for_user``, which passes it to ``scope``:

    promql.for_user(user, cluster, 'sum by (pod) (rate(http_requests_total[5m]))', capability=METRICS_VIEW)
    -> 'sum by (pod) (rate(http_requests_total{namespace="payments"}[5m]))'

Why the answer holds only those namespaces' series:

1. Prometheus computes an answer from the series its selectors match, from constants (numbers, strings,
   ``vector()``, ``time()``) and from the evaluation time; nothing else in a query reads stored data. The one
   exception, ``info()`` (Prometheus 3), reads ``target_info`` series the query does not name: refused, as is any
   function this module does not know. The metadata APIs (series, labels, label values) are not queries:
   prometheus.py offers none of them.
2. Every vector selector, wherever it sits (alone, in a range or a subquery, a function's argument, an
   aggregation's parameter, either side of ``or``/``and``/``unless`` and of any ``on``/``group_left`` join), gets
   one more matcher: ``namespace="a"``, or ``namespace=~"a|b"`` for several (names checked as Kubernetes DNS labels
   first, so they hold nothing a regular expression reads specially; Prometheus anchors regular expressions, so
   this is exactly a or b). A selector's matchers all have to hold, so the person's own matchers (even on
   ``namespace``) only narrow. Series without a ``namespace`` label (nodes, the API server) match neither: they are
   shown only to people who see the whole cluster, whose queries are not rewritten (metrics/places.py decides).
3. So an answer is made of allowed series and constants only. ``offset`` and ``@`` move in time but read the same
   namespaces; ``absent()`` makes its labels from equality matchers and Prometheus drops a label matched twice, so
   it never names another namespace. What would make an allowed series *claim* another namespace is refused:
   ``label_replace``/``label_join`` writing ``namespace`` and ``count_values`` naming its label so (a forged label
   carries no data, but a chart, an alert route or a reader would believe it).
4. ``{a="x" or b="y"}`` (Prometheus 3) is refused rather than given the matcher in each group: the Prometheus 2
   servers Kubemate talks to cannot read it, and one shape of selector (matchers that all hold) keeps point 2
   simple to check.
5. The rewritten text is printed here from the parsed tree. promql-parser's own ``str()`` does not escape quotes
   (``x{a="\\"} or {b=\\""}`` comes back as two selectors), and a node changed and handed back to ``transform()``
   loses its new matchers, so neither is used. Strings are escaped, names must be the classic ``[a-zA-Z_]...``
   kind, and the text is parsed again: it must print back to itself with the matcher in every selector, or the
   query is refused.

Bounds come first, before the parser (a Rust extension that recurses, and crashes the process rather than raising
on a few thousand chained operators or nested brackets): length, control characters, bracket nesting and
operator count, then, on the tree, selectors and depth. Any input ends in a query or in a ``PromQLError`` whose
sentence says why (a ``deferred.Failure``: shown now, stored for later readers).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import promql_parser as pp

from apps.accounts import access
from apps.accounts.capabilities import WORKLOADS_VIEW
from apps.clusters.values import is_dns_label
from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D

MAX_CHARS = 4000
MAX_NESTING = 32  # brackets open at once, counted before parsing
MAX_OPERATORS = 100  # operators outside braces and strings, counted before parsing (the parser recurses on them)
MAX_SELECTORS = 100
MAX_DEPTH = 64  # nodes from the root to the deepest leaf of the parsed tree
NAMESPACE = "namespace"


class PromQLError(Failure):
    """A query that is not run; the message is the sentence saying why."""


UNREADABLE = N_("The query is not valid PromQL: %(error)s")
BEFORE_1970 = N_("The time after @ must be after 1 January 1970.")
UNSAFE = N_("Kubemate could not limit this query to your namespaces, so it is not run.")

_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_OPERATOR = re.compile(r"==|!=|<=|>=|[-+*/%^<>]|\b(?:and|or|unless|atan2)\b")
_BEFORE_1970 = re.compile(r"@\s*-")
_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")
_WHITESPACE = frozenset("\t\n\r")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words a metric name cannot be printed as (the parser would read a keyword): such names go in a __name__ matcher.
_KEYWORDS = _words(
    """and or unless atan2 by without on ignoring group_left group_right bool offset start end inf nan sum avg count
    min max group stddev stdvar topk bottomk count_values quantile limitk limit_ratio"""
)
# Functions computed from their arguments alone. Not here: info() (reads target_info series it does not name) and
# any function registered into the parser later (promql_parser.register_extra_functions).
FUNCTIONS = _words(
    """abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp clamp_max
    clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month deg delta deriv
    double_exponential_smoothing end exp first_over_time floor histogram_avg histogram_count histogram_fraction
    histogram_quantile histogram_quantiles histogram_stddev histogram_stdvar histogram_sum hour idelta increase irate
    label_join label_replace last_over_time ln log10 log2 mad_over_time max_over_time min_over_time minute month pi
    predict_linear present_over_time quantile_over_time rad range rate resets round scalar sgn sin sinh sort
    sort_by_label sort_by_label_desc sort_desc sqrt start stddev_over_time stdvar_over_time step sum_over_time tan
    tanh time timestamp ts_of_first_over_time ts_of_last_over_time ts_of_max_over_time ts_of_min_over_time vector
    year"""
)
AGGREGATIONS = _words("sum avg count min max group stddev stdvar topk bottomk count_values quantile limitk limit_ratio")
BINARY = _words("+ - * / % ^ == != > < >= <= and or unless atan2")
_WRITES_LABEL = {"label_replace": 1, "label_join": 1}  # function -> index of its destination label argument
_MATCH_OPS = ((pp.MatchOp.Equal, "="), (pp.MatchOp.NotEqual, "!="), (pp.MatchOp.Re, "=~"), (pp.MatchOp.NotRe, "!~"))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# Bounds and parsing -------------------------------------------------------------------------------------------


def _outline(query: str) -> tuple[int, str]:
    """The deepest bracket nesting of ``query``, and its text with strings, comments and matchers blanked out."""
    depth = deepest = braces = 0
    kept: list[str] = []
    quote, escaped, comment = "", False, False
    for char in query:
        if comment:
            comment = char != "\n"
        elif quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote != "`":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char == "#":
            comment = True
        elif char in "([{":
            depth += 1
            deepest = max(deepest, depth)
            braces += char == "{"
        elif char in ")]}":
            depth = max(depth - 1, 0)
            braces = max(braces - (char == "}"), 0)
        elif not braces:
            kept.append(char)
            continue
        kept.append(" ")
    return deepest, "".join(kept)


def _bounded(query: str) -> None:
    """Refuse, before any parsing, what is too large or too deep for the parser to take safely."""
    if not isinstance(query, str) or not query.strip():
        raise PromQLError(D(N_("Write a PromQL query.")))
    if len(query) > MAX_CHARS:
        raise PromQLError(
            D(
                N_("The query is %(n)s characters long; Kubemate runs queries of at most %(max)s characters."),
                n=len(query),
                max=MAX_CHARS,
            )
        )
    for char in query:
        # Control, invisible (format) and lone surrogate characters: none is PromQL, and U+2063 would make a
        # parameter of the sentences below read as a stored sentence (apps.core.deferred.MARK).
        if char not in _WHITESPACE and unicodedata.category(char) in ("Cc", "Cf", "Cs"):
            raise PromQLError(
                D(
                    N_("The query holds an invisible or control character (U+%(code)s); remove it."),
                    code=f"{ord(char):04X}",
                )
            )
    deepest, outside = _outline(query)
    if deepest > MAX_NESTING:
        raise PromQLError(
            D(
                N_("The query nests brackets %(n)s deep; Kubemate runs queries nested at most %(max)s deep."),
                n=deepest,
                max=MAX_NESTING,
            )
        )
    if _BEFORE_1970.search(outside):  # read back, such a time panics inside the parser's extension
        raise PromQLError(D(BEFORE_1970))
    operators = len(_OPERATOR.findall(outside))
    if operators > MAX_OPERATORS:
        raise PromQLError(
            D(
                N_("The query has %(n)s operators; Kubemate runs queries with at most %(max)s."),
                n=operators,
                max=MAX_OPERATORS,
            )
        )


@contextlib.contextmanager
def _reading():
    """The parser's failures as a sentence. A panic inside the Rust extension is a BaseException (pyo3's
    PanicException), not an Exception: caught by name, so that KeyboardInterrupt and SystemExit still pass."""
    try:
        yield
    except PromQLError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        raise PromQLError(D(UNREADABLE, error=str(exc)[:300])) from None
    except BaseException as exc:
        if type(exc).__name__ != "PanicException":
            raise
        raise PromQLError(D(N_("Kubemate could not read this query; check its times and durations."))) from None


def _children(node) -> list:
    if isinstance(node, pp.VectorSelector | pp.NumberLiteral | pp.StringLiteral):
        return []
    if isinstance(node, pp.MatrixSelector):
        return [node.vector_selector]
    if isinstance(node, pp.SubqueryExpr | pp.ParenExpr | pp.UnaryExpr):
        return [node.expr]
    if isinstance(node, pp.Call):
        return list(node.args)
    if isinstance(node, pp.AggregateExpr):
        return [node.expr] if node.param is None else [node.param, node.expr]
    if isinstance(node, pp.BinaryExpr):
        return [node.lhs, node.rhs]
    raise PromQLError(D(UNSAFE))


def _selectors(tree) -> list:
    """Every vector selector of ``tree`` (iteratively: the depth is checked on the way, before any recursion)."""
    found, stack = [], [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise PromQLError(
                D(
                    N_("The query is nested too deeply; Kubemate runs queries at most %(max)s levels deep."),
                    max=MAX_DEPTH,
                )
            )
        if isinstance(node, pp.VectorSelector):
            found.append(node)
            if len(found) > MAX_SELECTORS:
                raise PromQLError(
                    D(N_("The query reads more than %(max)s series selectors; ask for fewer."), max=MAX_SELECTORS)
                )
        stack.extend((child, depth + 1) for child in _children(node))
    return found


def parse(query: str) -> pp.Expr:
    """The parsed tree of ``query`` (a promql_parser.Expr), once it is within every bound; PromQLError otherwise."""
    _bounded(query)
    with _reading():
        tree = pp.parse(query)
        _selectors(tree)
    return tree


# Printing with the namespace matcher ---------------------------------------------------------------------------


def _quoted(value: str) -> str:
    """A PromQL double-quoted string (JSON's escapes are all Go's, which Prometheus reads)."""
    return json.dumps(value, ensure_ascii=False)


def _matchers(selector) -> list[tuple[str, str, str]]:
    """A selector's matchers as (label, operator, value); MatchOp cannot be a dict key (not hashable)."""
    return [(m.name, next(text for op, text in _MATCH_OPS if m.op == op), m.value) for m in selector.matchers.matchers]


def _label(name: str) -> str:
    if not _LABEL.fullmatch(name):
        raise PromQLError(
            D(N_("Kubemate only runs label names of letters, digits and underscores, not %(name)s."), name=name)
        )
    return name


def _labels(names: Iterable[str]) -> str:
    return "(" + ", ".join(_label(n) for n in names) + ")"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _duration(value: timedelta) -> str:
    sign, value = ("-", -value) if value < timedelta(0) else ("", value)
    return sign + pp.display_duration(value)


def _string_argument(node) -> str | None:
    """The value of a string argument, through any parentheses; None when it is not a literal string."""
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    return node.val if isinstance(node, pp.StringLiteral) else None


def _refuse_namespace_label(value: str | None, where: str) -> None:
    if value is None:  # PromQL takes only a literal string here; anything else is not a query to run
        raise PromQLError(D(UNSAFE))
    if value == NAMESPACE:
        raise PromQLError(
            D(
                N_(
                    "The query writes the label %(label)s with %(where)s, so its answer could claim to come from "
                    "another namespace; name the new label differently."
                ),
                label=NAMESPACE,
                where=where,
            )
        )


class _Printer:
    """PromQL text of a parsed tree, with ``matcher`` (label, operator, value) in every selector."""

    def __init__(self, matcher: tuple[str, str, str]) -> None:
        self.matcher = matcher

    def text(self, node) -> str:
        if isinstance(node, pp.VectorSelector):
            return self.selector(node) + self.modifiers(node.at, node.offset)
        if isinstance(node, pp.MatrixSelector):
            inner = node.vector_selector
            return f"{self.selector(inner)}[{_duration(node.range)}]{self.modifiers(inner.at, inner.offset)}"
        if isinstance(node, pp.SubqueryExpr):
            step = _duration(node.step) if node.step else ""
            return f"{self.text(node.expr)}[{_duration(node.range)}:{step}]{self.modifiers(node.at, node.offset)}"
        if isinstance(node, pp.Call):
            return self.call(node)
        if isinstance(node, pp.AggregateExpr):
            return self.aggregate(node)
        if isinstance(node, pp.BinaryExpr):
            return self.binary(node)
        if isinstance(node, pp.ParenExpr):
            return f"({self.text(node.expr)})"
        if isinstance(node, pp.UnaryExpr):
            return f"-{self.text(node.expr)}"
        if isinstance(node, pp.NumberLiteral):
            return _number(node.val)
        if isinstance(node, pp.StringLiteral):
            return _quoted(node.val)
        raise PromQLError(D(UNSAFE))

    def selector(self, node) -> str:
        if node.matchers.or_matchers:
            raise PromQLError(
                D(
                    N_(
                        'Kubemate does not run selectors with or between their matchers ({a="x" or b="y"}); '
                        "join two selectors with or instead."
                    )
                )
            )
        matchers = [(_label(label), op, value) for label, op, value in _matchers(node)]
        name = node.name or ""
        if name and (not _METRIC.fullmatch(name) or name.lower() in _KEYWORDS):
            matchers.insert(0, ("__name__", "=", name))
            name = ""
        if self.matcher not in matchers:
            matchers.append(self.matcher)
        inner = ",".join(f"{label}{op}{_quoted(value)}" for label, op, value in matchers)
        return f"{name}{{{inner}}}"

    def modifiers(self, at, offset) -> str:
        text = ""
        if at is not None:
            if at.type == pp.AtModifierType.Start:
                text += " @ start()"
            elif at.type == pp.AtModifierType.End:
                text += " @ end()"
            else:
                # Times before 1970 were refused by _bounded (reading one back panics); _reading is the backstop.
                milliseconds = (at.at - _EPOCH) // timedelta(milliseconds=1)
                text += f" @ {milliseconds // 1000}.{milliseconds % 1000:03d}"
        if offset is not None:
            text += f" offset {_duration(offset)}"
        return text

    def call(self, node) -> str:
        name = node.func.name
        if name not in FUNCTIONS:
            raise PromQLError(
                D(N_("Kubemate cannot limit the function %(name)s() to your namespaces, so it is not run."), name=name)
            )
        args = list(node.args)
        if name in _WRITES_LABEL:
            _refuse_namespace_label(_string_argument(args[_WRITES_LABEL[name]]), f"{name}()")
        return f"{name}({', '.join(self.text(arg) for arg in args)})"

    def aggregate(self, node) -> str:
        op = str(node.op)
        if op not in AGGREGATIONS:
            raise PromQLError(D(UNSAFE))
        if op == "count_values":
            _refuse_namespace_label(_string_argument(node.param), "count_values()")
        grouping = ""
        if node.modifier is not None:
            word = "by" if node.modifier.type == pp.AggModifierType.By else "without"
            grouping = f" {word} {_labels(node.modifier.labels)}"
        param = "" if node.param is None else f"{self.text(node.param)}, "
        return f"{op}{grouping}{' ' if grouping else ''}({param}{self.text(node.expr)})"

    def binary(self, node) -> str:
        op = str(node.op)
        if op not in BINARY:
            raise PromQLError(D(UNSAFE))
        parts = [self.text(node.lhs), op]
        modifier = node.modifier
        if modifier is not None:
            if modifier.fill_values is not None and (
                modifier.fill_values.lhs is not None or modifier.fill_values.rhs is not None
            ):
                raise PromQLError(D(UNSAFE))
            if modifier.return_bool:
                parts.append("bool")
            if modifier.matching is not None:
                word = "on" if modifier.matching.type == pp.LabelModifierType.Include else "ignoring"
                parts.append(f"{word} {_labels(modifier.matching.labels)}")
            if modifier.card == pp.VectorMatchCardinality.ManyToOne:
                parts.append(f"group_left {_labels(modifier.group_labels or [])}")
            elif modifier.card == pp.VectorMatchCardinality.OneToMany:
                parts.append(f"group_right {_labels(modifier.group_labels or [])}")
        parts.append(self.text(node.rhs))
        return " ".join(parts)


# Tenancy -------------------------------------------------------------------------------------------------------


def _matcher(namespaces: Iterable[str]) -> tuple[str, str, str]:
    """The matcher every selector gets: ``namespace="a"``, or an anchored alternation of escaped names."""
    names = set(namespaces)
    if not names:
        raise PromQLError(D(N_("You may not read the metrics of any namespace in this cluster.")))
    for name in names:
        if not isinstance(name, str) or not is_dns_label(name):
            raise PromQLError(D(N_("%(name)s is not a namespace name, so no query is limited to it."), name=name))
    names = sorted(names)
    if len(names) == 1:
        return (NAMESPACE, "=", names[0])
    return (NAMESPACE, "=~", "|".join(_RE2_SPECIAL.sub(r"\\\1", name) for name in names))


def scope(query: str, namespaces: Iterable[str]) -> str:
    """``query`` rewritten so that every selector reads only series of ``namespaces``; PromQLError when it cannot be
    (with the sentence saying why)."""
    matcher = _matcher(namespaces)
    tree = parse(query)
    with _reading():
        text = _Printer(matcher).text(tree)
        again = pp.parse(text)
        # The printed text, read again, must be the same query with the matcher in every selector.
        every = all(matcher in _matchers(selector) for selector in _selectors(again))
        if not every or _Printer(matcher).text(again) != text:
            raise PromQLError(D(UNSAFE))
    return text


def for_user(user, cluster, query: str, *, capability: str = WORKLOADS_VIEW) -> str:
    """The query ``user`` may run in ``cluster``: as written (bounded and parsed) when they hold ``capability`` in
    the whole cluster, limited to the namespaces where they hold it otherwise (``scope``)."""
    namespaces = access.visible_namespaces(user, capability, cluster=cluster)
    if namespaces is None:
        parse(query)
        return query
    return scope(query, namespaces)
