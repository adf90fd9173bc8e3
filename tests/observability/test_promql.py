"""PromQL tenancy without a Prometheus (apps/observability/promql.py): bounds, refusals, the rewrite of every selector.

Every rewritten query is parsed again here with promql-parser and each of its selectors must carry the namespace
matcher; the real Prometheus answers are in test_tenancy_prometheus.py.
"""

import random

import promql_parser
import pytest

from apps.core import deferred
from apps.observability import promql
from apps.observability.metrics import catalogue

TEAM_A = ("namespace", "=", "team-a")
TEAM_A_AND_C = ("namespace", "=~", "team-a|team-c")


def selector_matchers(text: str) -> list[list[tuple[str, str, str]]]:
    """The matchers of every vector selector of ``text``, as promql-parser reads it."""
    return [promql._matchers(selector) for selector in promql._selectors(promql_parser.parse(text))]


def unscoped_selectors(text: str, matcher: tuple[str, str, str]) -> list:
    return [matchers for matchers in selector_matchers(text) if matcher not in matchers]


def refusal(query: str, namespaces=("team-a",)) -> str:
    with pytest.raises(promql.PromQLError) as refused:
        promql.scope(query, namespaces)
    return str(refused.value)


# The rewrite -----------------------------------------------------------------------------------------------------

EVERY_PLACE_OF_A_SELECTOR = [
    "up",
    'up or {namespace="team-b"}',
    "sum(x) or on() vector(1)",
    "max_over_time(x[5m:1s])",
    "rate(x[5m])[10m:]",
    '{__name__=~".+"}',
    'x{namespace=~".*"}',
    'x{namespace=~"team-a|team-b"}',
    'x{namespace!="team-a"}',
    'count by (namespace) ({__name__=~".+"})',
    "x @ end()",
    "x offset 1m",
    "x[5m] @ start() offset 1m",
    "topk(1000, x)",
    "topk(scalar(y), x)",
    "quantile(0.9, x)",
    "a * on(pod) group_left(node) b",
    "a + ignoring(c) group_right(d) b",
    "a > bool on(e) b",
    "a and b unless c or d",
    'absent(x{namespace="team-b"})',
    "absent_over_time(x[5m])",
    'label_replace(x, "tenant", "$1", "namespace", "(.*)")',
    'count_values("value", x)',
    "scalar(x) + vector(time())",
    "-(-x)",
    "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    "clamp(x, scalar(min(y)), scalar(max(z)))",
    "(x + y) * 2 / sum without (pod) (z)",
]


@pytest.mark.parametrize("query", EVERY_PLACE_OF_A_SELECTOR)
@pytest.mark.parametrize(
    ("namespaces", "matcher"), [(["team-a"], TEAM_A), (["team-c", "team-a"], TEAM_A_AND_C)], ids=["one", "two"]
)
def test_every_selector_of_the_rewritten_query_carries_the_namespace_matcher(query, namespaces, matcher):
    rewritten = promql.scope(query, namespaces)

    assert selector_matchers(rewritten), rewritten
    assert unscoped_selectors(rewritten, matcher) == []
    assert len(selector_matchers(rewritten)) == len(selector_matchers(query))


def test_the_namespace_matcher_is_added_to_the_persons_own_matchers():
    assert promql.scope("x", ["team-a"]) == 'x{namespace="team-a"}'
    assert promql.scope('x{pod=~"web-.+"}', ["team-b", "team-a"]) == 'x{pod=~"web-.+",namespace=~"team-a|team-b"}'
    assert promql.scope('x{namespace!="team-a"}', ["team-a"]) == 'x{namespace!="team-a",namespace="team-a"}'
    assert promql.scope('x{namespace="team-a"}', ["team-a"]) == 'x{namespace="team-a"}'
    assert promql.scope('{__name__=~".+"}', ["team-a"]) == '{__name__=~".+",namespace="team-a"}'
    assert promql.scope("sum by (pod) (rate(x[5m]))", ["team-a", "team-a"]) == (
        'sum by (pod) (rate(x{namespace="team-a"}[5m]))'
    )


def test_what_the_query_means_is_kept_in_the_printed_text():
    assert promql.scope("rate(x[5m])[10m:]", ["team-a"]) == 'rate(x{namespace="team-a"}[5m])[10m:]'
    assert promql.scope("x[1ms]", ["team-a"]) == 'x{namespace="team-a"}[1ms]'
    assert promql.scope("x offset -90s", ["team-a"]) == 'x{namespace="team-a"} offset -1m30s'
    assert promql.scope("x @ 1700000000.123", ["team-a"]) == 'x{namespace="team-a"} @ 1700000000.123'
    assert promql.scope("x[5m:1m] @ end() offset 1m", ["team-a"]) == 'x{namespace="team-a"}[5m:1m] @ end() offset 1m'
    assert promql.scope("a * on(pod) group_left x", ["team-a"]) == (
        'a{namespace="team-a"} * on (pod) group_left () x{namespace="team-a"}'
    )
    assert promql.scope("-1 ^ 2 + 1e400", ["team-a"]) == "-1 ^ 2 + Inf"
    assert promql.scope('x{a=~"\\\\d+"}', ["team-a"]) == 'x{a=~"\\\\d+",namespace="team-a"}'


def test_a_quote_inside_a_string_stays_inside_it():
    # promql-parser's own str() prints this back unescaped, as three selectors of which one reads every namespace.
    hostile = 'x{pod="\\"} or {namespace=~\\".+\\"} or x{b=\\""}'

    rewritten = promql.scope(hostile, ["team-a"])

    assert selector_matchers(rewritten) == [[("pod", "=", '"} or {namespace=~".+"} or x{b="'), TEAM_A]]


@pytest.mark.parametrize(
    ("place", "query"),
    [
        (place, q.promql)
        for place, charts in catalogue.CHARTS.items()
        for chart in charts
        for q in chart.queries
        if not q.cluster_wide
    ],
)
def test_every_ready_made_query_of_a_namespace_is_rewritten(place, query):
    filled = catalogue.fill(query, rate_window="2m", namespace="team-a", name="web", place=place)

    rewritten = promql.scope(filled, ["team-a"])

    assert unscoped_selectors(rewritten, TEAM_A) == []
    assert len(selector_matchers(rewritten)) == len(selector_matchers(filled))


# Refusals ----------------------------------------------------------------------------------------------------

REFUSED = [
    ('label_replace(x{namespace="team-b"}, "namespace", "team-a", "", "")', "writes the label namespace"),
    ('label_replace(x, ("namespace"), "team-a", "", "")', "writes the label namespace"),
    ('label_join(x, "namespace", ",", "pod")', "writes the label namespace"),
    ('count_values("namespace", x)', "writes the label namespace"),
    ("info(x)", "cannot limit the function info()"),
    ('x{pod="a" or namespace="team-b"}', "or between their matchers"),
    ('sum by ("a.b") (x)', "label names of letters, digits and underscores, not a.b"),
    ('x{"a.b"="1"}', "label names of letters, digits and underscores"),
    ("x @ -5", "after 1 January 1970"),
    ("x[5m:1m] @ -1", "after 1 January 1970"),
    ("sum(rate(x[5m])", "not valid PromQL"),
    ('x{a=~"(("}', "not valid PromQL"),
    ("x offset 1m offset 1m", "not valid PromQL"),
    ("", "Write a PromQL query."),
    ("  # a comment only", "not valid PromQL"),
]


@pytest.mark.parametrize(("query", "sentence"), REFUSED)
def test_what_cannot_be_made_safe_is_refused_with_a_reason(query, sentence):
    assert sentence in refusal(query)


def test_the_refusal_is_stored_as_a_sentence_for_later_readers():
    with pytest.raises(promql.PromQLError) as refused:
        promql.scope("info(x)", ["team-a"])

    assert deferred.is_deferred(refused.value.stored)
    assert deferred.render(refused.value.stored) == str(refused.value)
    assert str(refused.value) == "Kubemate cannot limit the function info() to your namespaces, so it is not run."


def test_an_empty_set_of_namespaces_is_refused():
    assert refusal("x", []) == "You may not read the metrics of any namespace in this cluster."


@pytest.mark.parametrize("namespaces", [["Team_A"], ["a|.*"], ['team-a"}'], ["team-a", ".+"], ["x" * 64], [""], [None]])
def test_namespaces_are_kubernetes_names(namespaces):
    assert "is not a namespace name, so no query is limited to it." in refusal("x", namespaces)


# Bounds ------------------------------------------------------------------------------------------------------


def test_the_length_is_bounded_before_parsing():
    assert promql.scope("x" * promql.MAX_CHARS, ["team-a"]).endswith('{namespace="team-a"}')
    assert refusal("x" * (promql.MAX_CHARS + 1)) == (
        "The query is 4001 characters long; Kubemate runs queries of at most 4000 characters."
    )


def test_bracket_nesting_is_bounded_before_parsing_and_strings_do_not_count():
    deepest = "(" * promql.MAX_NESTING + "x" + ")" * promql.MAX_NESTING
    brackets_in_a_string = 'x{pod="' + "(" * 1000 + '"}'

    assert unscoped_selectors(promql.scope(deepest, ["team-a"]), TEAM_A) == []
    assert unscoped_selectors(promql.scope(brackets_in_a_string, ["team-a"]), TEAM_A) == []
    assert (
        refusal("(" + deepest + ")")
        == "The query nests brackets 33 deep; Kubemate runs queries nested at most 32 deep."
    )
    assert "nests brackets 3999 deep" in refusal("(" * 3999)


def test_operators_are_bounded_before_parsing_and_matchers_do_not_count():
    many_matchers = "x{" + ",".join(f'l{n}!="v"' for n in range(300)) + "}"

    assert len(selector_matchers(promql.scope(many_matchers, ["team-a"]))[0]) == 301
    assert refusal(" + ".join(["x"] * 102)) == "The query has 101 operators; Kubemate runs queries with at most 100."
    assert "operators" in refusal("-" * 3000 + "x")


def test_selectors_and_depth_are_bounded_after_parsing():
    many_selectors = " + ".join(f"clamp(a{n}, scalar(b{n}), scalar(c{n}))" for n in range(40))
    deep = "-" * 70 + "x"

    assert refusal(many_selectors) == "The query reads more than 100 series selectors; ask for fewer."
    assert refusal(deep) == "The query is nested too deeply; Kubemate runs queries at most 64 levels deep."


def test_parse_alone_bounds_and_reads_the_query_for_people_who_see_everything():
    tree = promql.parse('sum by (namespace) ({__name__=~".+"})')

    assert isinstance(tree, promql_parser.AggregateExpr)
    with pytest.raises(promql.PromQLError, match="not valid PromQL"):
        promql.parse("sum(")
    with pytest.raises(promql.PromQLError, match="at most 4000 characters"):
        promql.parse("x" * 5000)


# Hostile input: a sentence or a scoped query, never anything else -----------------------------------------------

HOSTILE = [
    "\x00",
    "x\x00",
    'x{a="\x00"}',
    "x\x1b[31m",
    "\u2063km1:{}",
    "x{a=\ud800}",
    "(" * 100_000,
    "(" * 3999,
    ")" * 3999,
    "-" * 5000 + "x",
    "-" * 3999 + "x",
    "x" + "+x" * 1999,
    " or ".join(f"x{n}" for n in range(10_000)),
    " or ".join(f"x{n}" for n in range(500)),
    "x[99999999999999999999y]",
    "x offset 9999999999y",
    "x @ 1e400",
    "x @ 99999999999999999999",
    "0x" + "f" * 3000,
    'x{a="' + "\\" * 3001 + '"}',
    "x{" * 2000,
    "[" * 2000,
    "`" * 3,
    "'unterminated",
    "sum(x) by",
    "\U0001f642" * 1000,
    'x{\u4e2d\u6587="1"}',
    "{}",
    '{namespace=~".*"}',
]


def outcome(query: str) -> tuple[str, str]:
    """("scoped", text) or ("refused", sentence); any other exception fails the test."""
    try:
        return "scoped", promql.scope(query, ["team-a"])
    except promql.PromQLError as exc:
        return "refused", str(exc)


@pytest.mark.parametrize("query", HOSTILE, ids=lambda q: repr(q)[:40])
def test_hostile_input_is_refused_with_a_sentence(query):
    kind, sentence = outcome(query)

    assert kind == "refused"
    assert sentence.startswith(("The query", "Write a PromQL query")), sentence


@pytest.mark.parametrize(
    ("query", "rewritten"),
    [
        ("1e999999999", "Inf"),
        ('x{a=~"(a*)*b"}', 'x{a=~"(a*)*b",namespace="team-a"}'),
        ("x{a='single \"quoted\"'}", 'x{a="single \\"quoted\\"",namespace="team-a"}'),
        ('x{a=`raw "q"`}', 'x{a="raw \\"q\\"",namespace="team-a"}'),
        ('x{a="\\u2028\\t"}', 'x{a="\u2028\\t",namespace="team-a"}'),
    ],
)
def test_odd_but_valid_input_is_scoped(query, rewritten):
    assert outcome(query) == ("scoped", rewritten)


# Pieces of PromQL (and of escapes from it) that random queries are glued from.
SOUP = """x y up { } ( ) [ ] , " ' ` \\ namespace = != =~ !~ "team-b" ".+" or and unless on ignoring group_left
group_right by without sum count_values topk label_replace absent rate vector scalar offset @ start() end() 5m 1s :
- + * / ^ % > bool 1 1e400 NaN Inf 0x1f # __name__ info le 中 a="1" "namespace"
"""


def test_random_token_soup_is_scoped_or_refused_never_an_error():
    tokens = [*SOUP.split(), " ", " ", "\n"]
    rng = random.Random(13)
    soups = ["".join(rng.choice(tokens) for _ in range(rng.randint(1, 20))) for _ in range(3000)]

    outcomes = [outcome(soup) for soup in soups]

    scoped = [text for kind, text in outcomes if kind == "scoped"]
    assert {kind for kind, _text in outcomes} == {"scoped", "refused"}
    assert len(scoped) > 50
    assert [text for text in scoped if unscoped_selectors(text, TEAM_A)] == []
