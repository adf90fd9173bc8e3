"""PromQL typed by a hostile person (issue 13): a sentence, or a query limited to their namespaces; never a 500.

Each input is given to promql.for_user for a developer of a project holding team-a, then typed into the metrics
explorer by that developer. A refused query is the explorer's chart sentence; a query that could be limited is
sent, to a Prometheus address that answers nothing, so the page says it could not be reached (which also shows
it left). Bombs for the parser (brackets, operators and selectors by the thousand, huge numbers and durations,
control and invisible characters, quotes that try to close a string) are refused before or by the parser.
"""

import promql_parser
import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Project
from apps.observability import promql
from tests.factories import ClusterFactory, UserFactory
from tests.helpers import grant, login

pytestmark = pytest.mark.django_db

REFUSED = "chart-sentence"  # the explorer's sentence for a query it does not run
SENT = "metrics-sentence"  # the explorer's sentence for a Prometheus that does not answer
SURROGATE = "\ud800".encode("utf-8", "surrogatepass").decode("latin-1")  # what a lone surrogate arrives as

INPUTS = [
    ("brackets-3999", "(" * 3999, REFUSED),
    ("brackets-100000", "(" * 100_000, REFUSED),
    ("closing-brackets", ")" * 3999, REFUSED),
    ("braces-2000", "x{" * 2000, REFUSED),
    ("unary-3999", "-" * 3999 + "x", REFUSED),
    ("operators-1999", "x" + "+x" * 1999, REFUSED),
    ("selectors-500", " or ".join(f"x{n}" for n in range(500)), REFUSED),
    ("selectors-10000", " or ".join(f"x{n}" for n in range(10_000)), REFUSED),
    ("selectors-in-arguments", " + ".join(f"clamp(a{n}, scalar(b{n}), scalar(c{n}))" for n in range(40)), REFUSED),
    ("deep-functions", "abs(" * 40 + "x" + ")" * 40, REFUSED),
    ("length-4001", "x" * 4001, REFUSED),
    ("huge-duration", "x[99999999999999999999y]", REFUSED),
    ("huge-offset", "x offset 9999999999y", REFUSED),
    ("at-infinity", "x @ 1e400", REFUSED),
    ("at-huge", "x @ 99999999999999999999", REFUSED),
    ("at-before-1970", "x @ -5", REFUSED),
    ("subquery-before-1970", "x[5m:1m] @ -1", REFUSED),
    ("hex-huge", "0x" + "f" * 3000, REFUSED),
    ("backslashes", 'x{a="' + "\\" * 3001 + '"}', REFUSED),
    ("deferred-mark", '\u2063km1:{"id":"Kubemate could not read this query"}', REFUSED),
    ("zero-width", "x\u200b", REFUSED),
    ("surrogate-bytes", "x{a=" + SURROGATE + "}", REFUSED),
    ("emoji", "\U0001f642" * 1000, REFUSED),
    ("unicode-label", 'x{\u4e2d\u6587="1"}', REFUSED),
    ("quoted-label", 'x{"a.b"="1"}', REFUSED),
    ("or-matchers", 'x{pod="a" or namespace="team-b"}', REFUSED),
    ("info", "info(x)", REFUSED),
    ("forged-namespace", 'label_replace(x{namespace="team-b"}, "namespace", "team-a", "", "")', REFUSED),
    ("forged-by-count", 'count_values("namespace", x)', REFUSED),
    ("empty-selector", "{}", REFUSED),
    ("unterminated", "'unterminated", REFUSED),
    ("comment-only", "# nothing", REFUSED),
    ("quote-escape", 'x{pod="\\"} or {namespace=~\\".+\\"} or x{b=\\""}', SENT),
    ("or-team-b", 'up or {namespace="team-b"}', SENT),
    ("every-series", '{__name__=~".+"}', SENT),
    ("regex-namespace", 'x{namespace=~".*"}', SENT),
    ("regex-bomb", 'x{a=~"(a*)*b"}', SENT),
    ("infinity", "1e999999999 + x", SENT),
]
CONTROL = [("nul", "x\x00"), ("nul-in-string", 'x{a="\x00"}'), ("escape", "x\x1b[31m"), ("delete", "x\x7f")]


@pytest.fixture
def developer():
    """A developer of team-a in a cluster whose Prometheus address answers nothing."""
    cluster = ClusterFactory(prometheus_url="http://127.0.0.1:9")
    project = Project.objects.create(cluster=cluster, slug="a", name="Team A", namespaces=["team-a"])
    user = UserFactory()
    grant(user, "developer", project=project)
    return {"user": user, "cluster": cluster}


def explore(developer, text: str):
    client = login(Client(), developer["user"])
    return client.get(reverse("observability:explorer"), {"cluster": developer["cluster"].pk, "query": text})


def matcherless_selectors(text: str) -> list[str]:
    selectors = promql._selectors(promql_parser.parse(text))
    return [str(node) for node in selectors if ("namespace", "=", "team-a") not in promql._matchers(node)]


@pytest.mark.parametrize(("name", "text"), [(n, t) for n, t, kind in INPUTS if kind == REFUSED])
def test_a_query_that_cannot_be_limited_is_a_sentence(developer, name, text):
    with pytest.raises(promql.PromQLError) as refused:
        promql.for_user(developer["user"], developer["cluster"], text)

    response = explore(developer, text)

    assert str(refused.value)
    assert response.status_code == 200
    assert f'data-testid="{REFUSED}"' in response.content.decode()


@pytest.mark.parametrize(("name", "text"), [(n, t) for n, t, kind in INPUTS if kind == SENT])
def test_a_query_that_can_be_limited_is_sent_with_the_matcher_in_every_selector(developer, name, text):
    limited = promql.for_user(developer["user"], developer["cluster"], text)

    response = explore(developer, text)

    assert matcherless_selectors(limited) == []
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-testid="{SENT}"' in html and "could not be reached" in html


@pytest.mark.parametrize(("name", "text"), CONTROL)
def test_control_characters_are_refused_by_promql_and_before_the_explorer(developer, name, text):
    with pytest.raises(promql.PromQLError, match="invisible or control character"):
        promql.for_user(developer["user"], developer["cluster"], text)

    assert explore(developer, text).status_code == 400
