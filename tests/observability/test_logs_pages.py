"""The log search pages against a real VictoriaLogs (tests/plugins/victorialogs.py): lines pushed for a pod are
found by the form's fields, marked, shown with their fields and their context, followed live, downloaded within a
limit (audited) and paged backwards; a project member reads only their namespaces and types no raw query without
``logs.query``; a stopped store is a sentence on a page that answers 200; without a log store the page reads the
chosen pod's recent lines from Kubernetes (the sandbox's kwok pod)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from django.urls import reverse
from kubernetes import client as k8s

from apps.accounts.models import Project
from apps.core.models import AuditEvent
from tests.factories import AdminFactory, ClusterFactory, UserFactory
from tests.helpers import (
    bind,
    create_namespace,
    delete_namespace,
    deployment,
    grant,
    login,
    running_pods,
    unique,
    wait_for,
)

pytestmark = pytest.mark.django_db

SEARCH = reverse("observability:logs_search")
RESULTS = reverse("observability:logs_results")
CONTEXT = reverse("observability:logs_context")
TAIL = reverse("observability:logs_tail")
DOWNLOAD = reverse("observability:logs_download")
HTMX = {"HTTP_HX_REQUEST": "true"}
KWOK_LOG = Path(__file__).resolve().parents[2] / "deploy" / "sandbox" / "demo" / "logs" / "erp-web.log"


# Lines are pushed as promtail pushes them (the fixture's Loki push API): stream labels namespace, pod, container
# and level, the text as written.


def push(victorialogs, records: list[dict]) -> None:
    """Write ``records`` ({ns, pod, msg, level, ago (seconds), container}) and wait until the store counts them."""
    now = datetime.now(UTC)
    victorialogs.push(
        {
            "line": r["msg"],
            "time": now - timedelta(seconds=r.get("ago", 1)),
            "namespace": r["ns"],
            "pod": r["pod"],
            "container": r.get("container", "web"),
            **({"level": r["level"]} if r.get("level") else {}),
        }
        for r in records
    )
    for ns in {r["ns"] for r in records}:
        victorialogs.wait_for(f'{{namespace="{ns}"}}', sum(1 for r in records if r["ns"] == ns))


def line(ns, pod, msg, level="info", ago=1, **extra) -> dict:
    return {"ns": ns, "pod": pod, "msg": msg, "level": level, "ago": ago, **extra}


def texts(html: str) -> list[str]:
    """The text of each line shown, marks removed, in page order."""
    found = re.findall(r'data-testid="log-text">(.*?)</span>', html, flags=re.S)
    return [unescape(re.sub(r"</?mark[^>]*>", "", t)) for t in found]


def body(response) -> str:
    return response.content.decode()


@pytest.fixture
def store(victorialogs):
    return ClusterFactory(name=unique("logs"), logs_url=victorialogs.url, logs_backend="victorialogs")


@pytest.fixture
def admin(client):
    user = AdminFactory()
    login(client, user)
    return user


def wait_lines(client, params: dict, count: int, url: str = SEARCH) -> str:
    """The page once the store shows ``count`` lines (ingestion takes a moment)."""
    html = wait_for(lambda: (h := body(client.get(url, params))) and len(texts(h)) >= count and h, timeout=20)
    assert html, f"the store did not show {count} lines"
    return html


def test_the_form_finds_the_lines_of_that_pod_and_level_only(client, store, admin, victorialogs):
    ns = unique("pay")
    push(
        victorialogs,
        [
            line(ns, "pay-api-1", "card declined for order 17", "error", ago=30),
            line(ns, "pay-api-1", "order 17 received", "info", ago=31),
            line(ns, "pay-api-2", "database timeout", "error", ago=20),
        ],
    )
    html = wait_lines(client, {"cluster": store.pk, "namespace": ns, "pod": "pay-api-1", "level": "error"}, 1)

    assert texts(html) == ["card declined for order 17"]
    assert 'data-testid="log-level">Error<' in html
    assert f"{ns}/" in html and "pay-api-1" in html and "/web" in html
    assert 'data-testid="logs-histogram"' in html and '"series"' in html


def test_a_keyword_is_marked_in_escaped_text(client, store, admin, victorialogs):
    ns = unique("pay")
    push(victorialogs, [line(ns, "pay-api-1", "<script>alert(1)</script> payment FAILED twice")])
    html = wait_lines(client, {"cluster": store.pk, "namespace": ns, "q": "failed"}, 1)

    assert '<mark class="log-mark">FAILED</mark>' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html


def test_a_regular_expression_is_searched_and_marked(client, store, admin, victorialogs):
    ns = unique("pay")
    push(victorialogs, [line(ns, "p-1", "order 1234 paid"), line(ns, "p-1", "order abc paid")])
    html = wait_lines(client, {"cluster": store.pk, "namespace": ns, "q": r"order \d+", "regex": "1"}, 1)

    assert texts(html) == ["order 1234 paid"]
    assert '<mark class="log-mark">order 1234</mark>' in html


def test_a_json_line_shows_its_fields(client, store, admin, victorialogs):
    ns = unique("pay")
    message = json.dumps({"msg": "paid", "order_id": "A-77", "amount": 12.5})
    push(victorialogs, [line(ns, "p-1", message)])
    html = wait_lines(client, {"cluster": store.pk, "namespace": ns}, 1)

    assert 'data-testid="log-fields"' in html
    fields = dict(re.findall(r'translate="no">([^<]+)</th><td[^>]*>([^<]*)</td>', html))
    assert fields.get("order_id") == "A-77" and fields.get("amount") == "12.5"


def test_context_shows_ten_lines_either_side_of_the_same_stream(client, store, admin, victorialogs):
    ns = unique("pay")
    push(
        victorialogs,
        [line(ns, "p-1", f"step {i:02d}", ago=100 - i) for i in range(30)] + [line(ns, "p-2", "another pod's", ago=85)],
    )
    html = wait_lines(client, {"cluster": store.pk, "namespace": ns, "q": "step 15"}, 1)
    link = unescape(re.search(r'hx-get="([^"]*/context/[^"]*)"', html).group(1))

    around = body(client.get(link, **HTMX))

    shown = texts(around)
    assert shown == [f"step {i:02d}" for i in range(5, 26)]
    assert re.search(r'data-anchor="1">.*?step 15', around, flags=re.S)
    assert "another pod&#x27;s" not in around and "another pod's" not in shown


def test_the_live_tail_brings_a_line_pushed_after_the_page_opened_once(client, store, admin, victorialogs):
    ns = unique("pay")
    page = body(client.get(SEARCH, {"cluster": store.pk, "namespace": ns}))
    tail_url = unescape(re.search(r'data-tail-url="([^"]+)"', page).group(1))
    after = re.search(r'data-tail-after="([^"]+)"', page).group(1)
    push(victorialogs, [line(ns, "p-1", "arrived after the page opened", ago=0)])

    def poll(since, seen=()):
        answer = body(client.get(tail_url, {"after": since, "seen": list(seen)}, **HTMX))
        return (
            answer,
            re.search(r'data-tail-next="([^"]*)"', answer).group(1),
            json.loads(unescape(re.search(r'data-tail-seen="([^"]*)"', answer).group(1))),
        )

    first = wait_for(lambda: (p := poll(after)) and texts(p[0]) and p, timeout=20)
    assert first and texts(first[0]) == ["arrived after the page opened"]
    again, _next, _seen = poll(first[1], first[2])
    assert texts(again) == []


def test_the_download_stops_at_the_chosen_limit_and_is_audited(client, store, admin, victorialogs):
    ns = unique("pay")
    push(victorialogs, [line(ns, "p-1", f"line {i}", ago=300 - i * 0.1) for i in range(1200)])
    wait_lines(client, {"cluster": store.pk, "namespace": ns, "limit": "1000"}, 1000)

    response = client.get(DOWNLOAD, {"cluster": store.pk, "namespace": ns, "limit": "1000"})
    content = b"".join(response.streaming_content).decode().splitlines()

    assert response["Content-Disposition"].startswith('attachment; filename="logs_')
    assert content[0].startswith("# ") and "1,000" in content[0] and f"namespace={ns}" in content[0]
    assert len(content) == 1 + 1000
    event = AuditEvent.objects.filter(action="observability.logs.download").latest("seq")
    assert event.actor_name == admin.username and event.namespace == ns
    assert event.detail["count"] == 1000 and event.detail["limit"] == 1000
    assert event.detail["filters"]["namespace"] == ns


def test_the_download_offers_the_three_limits_with_ten_thousand_first(client, store, admin, victorialogs):
    html = body(client.get(SEARCH, {"cluster": store.pk}))

    assert re.search(r'limit=10000&amp;format=text" data-testid="logs-download">.*Download 10,000 lines', html)
    for limit in ("1000", "10000", "100000"):
        assert f'data-testid="logs-download-text-{limit}"' in html
        assert f'data-testid="logs-download-ndjson-{limit}"' in html


def test_older_lines_page_backwards_without_repeating(client, store, admin, victorialogs):
    ns = unique("pay")
    push(victorialogs, [line(ns, "p-1", f"line {i:03d}", ago=200 - i) for i in range(150)])
    html = wait_lines(client, {"cluster": store.pk, "namespace": ns, "limit": "100"}, 100)
    first = texts(html)
    older = unescape(re.search(r'hx-get="([^"]*older=1[^"]*)"', html).group(1))

    rest = texts(body(client.get(older, **HTMX)))

    assert first == [f"line {i:03d}" for i in range(149, 49, -1)]
    assert rest == [f"line {i:03d}" for i in range(49, -1, -1)]


def test_the_raw_query_box_is_for_holders_of_logs_query_only(client, store, victorialogs):
    ns = unique("pay")
    project = Project.objects.create(cluster=store, slug=unique("p"), name="Pay", namespaces=[ns])
    viewer, developer = UserFactory(), UserFactory()
    grant(viewer, "viewer", project=project)
    grant(developer, "developer", project=project)
    push(victorialogs, [line(ns, "p-1", "visible to both")])

    login(client, developer)
    assert 'data-testid="logs-raw-query"' in body(client.get(SEARCH, {"cluster": store.pk}))
    login(client, viewer)
    html = body(client.get(SEARCH, {"cluster": store.pk, "raw": "*"}))
    assert 'data-testid="logs-raw-query"' not in html
    assert "Only people allowed to write log queries may use the query box" in html
    assert texts(html) == []


def test_a_project_member_reads_only_their_namespaces(client, store, victorialogs):
    mine, theirs = unique("pay"), unique("hr")
    project = Project.objects.create(cluster=store, slug=unique("p"), name="Pay", namespaces=[mine])
    member = UserFactory()
    grant(member, "developer", project=project)
    push(victorialogs, [line(mine, "p-1", "my payment line"), line(theirs, "h-1", "salary of the CEO")])
    login(client, member)

    own = wait_lines(client, {"cluster": store.pk}, 1)
    foreign = body(client.get(SEARCH, {"cluster": store.pk, "namespace": theirs}))
    raw = body(client.get(SEARCH, {"cluster": store.pk, "raw": f'namespace:"{theirs}"'}))
    tail = body(client.get(TAIL, {"cluster": store.pk, "namespace": theirs, "after": "2000-01-01T00:00:00Z"}))
    download = client.get(DOWNLOAD, {"cluster": store.pk, "namespace": theirs})

    assert texts(own) == ["my payment line"]
    assert f'<option value="{theirs}"' not in own
    assert "salary of the CEO" not in foreign and f"You may not read the logs of namespace {theirs}" in foreign
    assert "salary of the CEO" not in raw
    assert "salary of the CEO" not in tail
    assert "Content-Disposition" not in download and "salary of the CEO" not in body(download)


def test_a_stranger_and_an_anonymous_visitor_get_nothing(client, store):
    assert client.get(SEARCH)["Location"].startswith(reverse("login"))
    login(client, UserFactory())
    for url in (SEARCH, RESULTS, CONTEXT, TAIL, DOWNLOAD):
        assert client.get(url, {"cluster": store.pk}).status_code == 404


def test_a_stopped_store_is_a_sentence_on_a_page_that_answers(client, store, admin, victorialogs):
    victorialogs.stop()
    try:
        page = client.get(SEARCH, {"cluster": store.pk})
        partial = client.get(RESULTS, {"cluster": store.pk}, **HTMX)
        tail = client.get(TAIL, {"cluster": store.pk, "after": "2000-01-01T00:00:00Z"}, **HTMX)
        download = client.get(DOWNLOAD, {"cluster": store.pk})
    finally:
        victorialogs.start()

    for response in (page, partial, tail, download):
        assert response.status_code == 200
    assert 'data-testid="logs-sentence"' in body(page) and 'data-testid="logs-sentence"' in body(partial)
    assert 'data-tail-sentence=""' not in body(tail)
    assert "Content-Disposition" not in download


def test_the_page_speaks_chinese(client, store, admin):
    html = body(client.get(SEARCH, {"cluster": store.pk}, HTTP_ACCEPT_LANGUAGE="zh-hans"))

    assert "日志" in html and "关键词" in html and "级别" in html
    assert "Keyword or phrase" not in html and "Levels" not in html


# Without a log store: the sandbox's kwok pod, read from Kubernetes.


@pytest.fixture
def kwok_pod(sandbox, registered_cluster, admin_user):
    ns = unique("logs-fb")
    create_namespace(sandbox, ns)
    k8s.AppsV1Api(sandbox.api_client).create_namespaced_deployment(ns, deployment("web"))
    developer = UserFactory()
    bind(admin_user, registered_cluster, developer, "developer", [ns])
    pod = wait_for(lambda: running_pods(sandbox, ns, "app=web"))[0].metadata.name
    yield {"cluster": registered_cluster, "namespace": ns, "pod": pod, "user": developer}
    delete_namespace(sandbox, ns)


@pytest.mark.sandbox
def test_without_a_log_store_the_pods_recent_lines_come_from_kubernetes(client, kwok_pod):
    word = KWOK_LOG.read_text().splitlines()[-1].split(" ", 3)[3].split()[0]
    login(client, kwok_pod["user"])
    params = {"cluster": kwok_pod["cluster"].pk, "namespace": kwok_pod["namespace"]}

    asking = body(client.get(SEARCH, params))
    html = body(client.get(SEARCH, {**params, "pod": kwok_pod["pod"], "q": word}))

    assert "Choose a namespace and a pod to read its recent lines from Kubernetes" in asking
    sentence = unescape(re.sub(r"<[^>]+>", "", re.search(r'"logs-no-store">(.*?)</div>', html, flags=re.S).group(1)))
    assert sentence.strip().startswith(
        "No log store is set for this cluster: these are the pod's recent lines from Kubernetes."
    )
    assert texts(html) and all(word.lower() in t.lower() for t in texts(html))
    assert f'<mark class="log-mark">{word}</mark>' in html
    assert 'data-testid="logs-settings"' not in html  # only for those who manage clusters
