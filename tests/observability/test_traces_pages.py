"""The trace pages against a real Jaeger v2 (tests/plugins/jaeger.py): a trace sent over OTLP is found by service and
duration, drawn as a waterfall in parent/child order with its error span marked and its critical path; the service
graph has the calls; a project member finds, opens and reads only what comes from their namespaces; a Jaeger that
is stopped or not set is a sentence, never a 500; the pages speak Chinese."""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.urls import reverse

from apps.accounts.models import Project
from apps.observability.traces import services
from tests.factories import AdminFactory, ClusterFactory, UserFactory
from tests.helpers import grant, login, unique
from tests.plugins.jaeger import send_traces

pytestmark = pytest.mark.django_db

SEARCH = reverse("observability:trace_search")
GRAPH = reverse("observability:trace_dependencies")


# A hidden span attribute: distinctive, so no random token on the page can hold it by chance.
MARK = "s3cret-tag-7f2q"


def detail(cluster, trace_id: str) -> str:
    return reverse("observability:trace_detail", args=[cluster.pk, trace_id])


def renamed(spans, tag: str):
    return [replace(s, service=f"{s.service}-{tag}") for s in spans]


def rows(html: str) -> list[dict]:
    """The waterfall's rows: their attributes, in page order."""
    found = []
    for match in re.finditer(r'<div class="traces-row"([^>]*)>', html):
        found.append(dict(re.findall(r'data-([a-z-]+)="([^"]*)"', match.group(1))))
    return found


@pytest.fixture
def traced(jaeger):
    cache.clear()
    return ClusterFactory(jaeger_url=jaeger.url)


def search(client, cluster, **params) -> str:
    page = client.get(SEARCH, {"cluster": cluster.pk, "range": "15m", **params})
    assert page.status_code == 200
    return page.content.decode()


def test_a_trace_is_found_by_service_and_minimum_duration_and_drawn_as_a_waterfall(client, jaeger, traced):
    tag = unique("t")[-6:]
    trace_id = jaeger.send(renamed(send_traces().checkout("payments"), tag))
    jaeger.wait_for_trace(trace_id, spans=4)
    login(client, AdminFactory())

    html = search(client, traced, service=f"redis-{tag}", min_duration="100ms")
    assert f'data-trace-id="{trace_id}"' in html and 'data-testid="traces-scatter"' in html
    assert f'web-{tag}</span>: <span translate="no">GET /checkout' in html
    assert detail(traced, trace_id) in html
    html = search(client, traced, service=f"redis-{tag}", min_duration="151ms")
    assert trace_id not in html and 'data-testid="traces-none"' in html
    # The service's choices come from Jaeger, the operations from the chosen service.
    assert f'<option value="redis-{tag}" selected>' in html and '<option value="GET cart">' in html

    page = client.get(detail(traced, trace_id))
    assert page.status_code == 200
    drawn = rows(page.content.decode())
    assert [(r["depth"], r["service"], r["operation"]) for r in drawn] == [
        ("0", f"web-{tag}", "GET /checkout"),
        ("1", f"orders-{tag}", "POST /orders"),
        ("2", f"redis-{tag}", "GET cart"),
        ("2", f"orders-{tag}", "INSERT orders"),
    ]
    assert [r["duration-us"] for r in drawn] == ["200000", "175000", "150000", "10000"]
    assert [r["parent-row"] for r in drawn] == ["-1", "0", "1", "1"]
    # The Redis read is what the request waited for; the insert after it is on the path as well.
    assert [r["critical"] for r in drawn] == ["true", "true", "true", "true"]
    assert all(r["error"] == "false" for r in drawn)
    html = page.content.decode()
    assert "k8s.pod.name" in html and "GET cart:42" in html
    logs = reverse("observability:logs_search")
    assert f"{logs}?cluster={traced.pk}&amp;namespace=payments&amp;pod=redis-{tag}-7d9f8b6c5-x2x4q&amp;start=" in html
    assert f"{logs}?cluster={traced.pk}&amp;q={trace_id}" in html


def test_the_error_span_is_marked(client, jaeger, traced):
    tag = unique("t")[-6:]
    trace_id = jaeger.send(renamed(send_traces().failed_payment("payments"), tag))
    jaeger.wait_for_trace(trace_id, spans=2)
    login(client, AdminFactory())
    html = client.get(detail(traced, trace_id)).content.decode()
    assert [(r["operation"], r["error"]) for r in rows(html)] == [("POST /pay", "true"), ("charge", "true")]
    assert "card declined" in html and 'data-testid="span-error"' in html
    html = search(client, traced, service=f"payments-{tag}")
    assert re.search(
        rf'data-trace-id="{trace_id}".*?data-testid="trace-errors"><span class="badge bg-red text-white">2<', html, re.S
    )


def crafted(tag: str, namespace: str = "payments"):
    """root 0–100 ms; B 5–60 and C 10–80 overlap, C1 15–75 under C; E 85–95 ends last. The end waited for E, then
    (before E began) for C and its C1; B ended while C still ran, so B is not on the path."""
    Spec = send_traces().Spec
    s = f"svc-{tag}"
    return [
        Spec("root", s, "root", 0, 100, namespace=namespace),
        Spec("b", s, "B", 5, 55, parent="root", namespace=namespace),
        Spec("c", s, "C", 10, 70, parent="root", namespace=namespace),
        Spec("c1", s, "C1", 15, 60, parent="c", namespace=namespace),
        Spec("e", s, "E", 85, 10, parent="root", namespace=namespace),
    ]


def test_the_critical_path_of_overlapping_siblings(client, jaeger, traced):
    tag = unique("t")[-6:]
    trace_id = jaeger.send(crafted(tag))
    jaeger.wait_for_trace(trace_id, spans=5)
    login(client, AdminFactory())
    drawn = rows(client.get(detail(traced, trace_id)).content.decode())
    assert [r["operation"] for r in drawn] == ["root", "B", "C", "C1", "E"]
    assert {r["operation"] for r in drawn if r["critical"] == "true"} == {"root", "C", "C1", "E"}

    from apps.observability import jaeger as door

    trace = door.trace(traced, trace_id)
    names = {s.span_id: s.operation for s in trace.spans}
    start = trace.start_us
    path = [(names[i], (a - start) // 1000, (b - start) // 1000) for i, a, b in services.critical_path(trace)]
    assert path == [("root", 95, 100), ("E", 85, 95), ("root", 80, 85), ("C", 75, 80), ("C1", 15, 75),
                    ("C", 10, 15), ("root", 0, 10)]  # fmt: skip


def test_the_service_graph_has_the_calls(client, jaeger, traced):
    tag = unique("t")[-6:]
    trace_id = jaeger.send(renamed(send_traces().checkout("payments"), tag))
    jaeger.wait_for_trace(trace_id, spans=4)
    login(client, AdminFactory())
    page = client.get(GRAPH, {"cluster": traced.pk, "range": "15m"})
    html = page.content.decode()
    assert page.status_code == 200 and 'data-testid="graph-chart"' in html
    for edge in (f"web-{tag}>orders-{tag}", f"orders-{tag}>redis-{tag}"):
        assert f'data-edge="{edge}"' in html
    assert f'data-edge="redis-{tag}>web-{tag}"' not in html


@pytest.fixture
def teams(traced):
    mine, theirs = unique("team-a"), unique("team-b")
    project = Project.objects.create(cluster=traced, slug=unique("p"), name="A", namespaces=[mine])
    member = UserFactory()
    grant(member, "developer", project=project)
    return {"mine": mine, "theirs": theirs, "member": member}


def test_a_project_member_finds_opens_and_reads_only_their_namespaces(client, jaeger, traced, teams):
    Spec = send_traces().Spec
    tag = unique("t")[-6:]
    mine, theirs = teams["mine"], teams["theirs"]
    own = jaeger.send(renamed(send_traces().checkout(mine), tag))
    foreign = jaeger.send(renamed(send_traces().checkout(theirs), tag))
    # A mixed trace: their gateway calls our API, which calls their ledger.
    mixed = jaeger.send(
        [
            Spec(
                "gw", f"gateway-{tag}", "POST /transfer", 0, 100, namespace=theirs, attributes={"secret.tag": MARK}
            ),
            Spec("api", f"api-{tag}", "POST /api/transfer", 10, 80, parent="gw", namespace=mine),
            Spec("ledger", f"ledger-{tag}", "book", 20, 50, parent="api", namespace=theirs,
                 attributes={"account": "DE0012345"}),
        ]
    )  # fmt: skip
    for trace_id, spans in ((own, 4), (foreign, 4), (mixed, 3)):
        jaeger.wait_for_trace(trace_id, spans=spans)
    login(client, teams["member"])

    # Search: the same service in both namespaces; only the member's trace is found.
    html = search(client, traced, service=f"web-{tag}")
    assert own in html and foreign not in html
    assert f'<option value="web-{tag}"' in html and f'<option value="gateway-{tag}"' not in html
    html = search(client, traced, service=f"web-{tag}", namespace=theirs)
    assert foreign not in html and own not in html
    html = search(client, traced, service=f"web-{tag}", tags=f"k8s.namespace.name={theirs}")
    assert foreign not in html
    html = search(client, traced, service=f"gateway-{tag}")  # a service of theirs, typed by hand
    assert mixed not in html and foreign not in html
    html = search(client, traced, service=f"api-{tag}")
    assert mixed in html and "POST /transfer" not in html and f"gateway-{tag}" not in html

    # By id: not theirs answers as a missing trace does (no existence leak), in the same words.
    missing = "0123456789abcdef0123456789abcdef"
    refused, absent = client.get(detail(traced, foreign)), client.get(detail(traced, missing))
    assert refused.status_code == absent.status_code == 404
    assert "There is no trace" in refused.content.decode() and f"web-{tag}" not in refused.content.decode()

    def sentence(page):
        return re.search(r'data-testid="trace-sentence">(.*?)</div>', page.content.decode(), re.S).group(1)

    assert sentence(refused).replace(foreign, missing) == sentence(absent)

    # The mixed trace opens; its foreign spans keep their place and time, and nothing else.
    page = client.get(detail(traced, mixed))
    html = page.content.decode()
    assert page.status_code == 200
    drawn = rows(html)
    assert [r["outside"] for r in drawn] == ["true", "false", "true"]
    assert "service" not in drawn[0] and drawn[1]["service"] == f"api-{tag}"
    for secret in (f"gateway-{tag}", f"ledger-{tag}", "POST /transfer", "book", "DE0012345", MARK, theirs):
        assert secret not in html
    assert "outside your projects" in html

    # Their service graph names only their services; the others are one anonymous node.
    html = client.get(GRAPH, {"cluster": traced.pk, "range": "15m"}).content.decode()
    assert f'data-edge="outside your projects>api-{tag}"' in html
    assert f'data-edge="api-{tag}>outside your projects"' in html
    assert f"gateway-{tag}" not in html and f"ledger-{tag}" not in html and theirs not in html


def test_people_without_traces_view_get_404(client, traced):
    login(client, UserFactory())
    assert client.get(SEARCH).status_code == 404
    assert client.get(GRAPH).status_code == 404
    assert client.get(detail(traced, "0123456789abcdef")).status_code == 404


def test_a_stopped_or_missing_jaeger_is_a_sentence(client, jaeger, traced):
    admin = AdminFactory()
    login(client, admin)
    jaeger.stop()
    try:
        for url in (
            f"{SEARCH}?{urlencode({'cluster': traced.pk, 'service': 'web'})}",
            f"{GRAPH}?cluster={traced.pk}",
            detail(traced, "0123456789abcdef0123456789abcdef"),
        ):
            page = client.get(url)
            assert page.status_code == 200, url
            assert f"Jaeger at {jaeger.url} could not be reached." in page.content.decode()
    finally:
        jaeger.start()
    bare = ClusterFactory(jaeger_url="")
    page = client.get(SEARCH, {"cluster": bare.pk, "service": "web"})
    html = page.content.decode()
    assert page.status_code == 200 and "No Jaeger URL is set for this cluster." in html
    assert reverse("clusters:registry_settings", args=[bare.pk]) in html


def test_the_pages_speak_chinese(client, jaeger, traced):
    login(client, AdminFactory())
    page = client.get(SEARCH, {"cluster": traced.pk}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    html = page.content.decode()
    assert page.status_code == 200 and "集群" in html and "可观测性" in html
    assert "Cluster" not in re.sub(r"<[^>]+>", "", html.split('id="traces"')[1])
