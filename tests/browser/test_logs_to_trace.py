"""From a pod's logs to the slow span, in the browser, in English and Chinese: a project developer opens a pod's page,
follows "Search logs" (the pod filled in), keeps the warnings only, follows the trace link of the warning line and
sees in the waterfall the Redis read that took 150 of the request's 200 ms, on the critical path; the trace search
draws its scatter and the service graph its calls. A real VictoriaLogs (tests/plugins/victorialogs.py) holds the
lines and a real Jaeger (tests/plugins/jaeger.py) the traces, sent over OTLP as ``make demo`` sends them
(deploy/local/demo_telemetry.py), each span carrying its pod. Screenshots for the documentation
(docs/screenshots/observability/, 1400 px wide, full page)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from apps.accounts.models import Project
from tests.clusters.inventory_rows import deployment, namespace, pod, replicaset, synced
from tests.factories import ClusterFactory, UserFactory
from tests.helpers import grant, sign_in_page, unique
from tests.plugins.jaeger import send_traces

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "observability"
LATIN = re.compile(r"[A-Za-z]")
WORDS = {
    "en": {"search_logs": "Search logs", "logs": "Logs", "warn": "Warning", "trace": "Trace", "traces": "Traces",
           "expand": "Expand all", "graph": "Service graph"},
    "zh-hans": {"search_logs": "搜索日志", "logs": "日志", "warn": "警告", "trace": "链路", "traces": "链路追踪",
                "expand": "全部展开", "graph": "服务拓扑"},
}  # fmt: skip
INFO_LINES = [
    'level=info msg="listening on :8080"',
    'level=info msg="GET /healthz" status=200 took_ms=1',
    'level=info msg="GET /api/v1/cart" status=200 took_ms=12',
    'level=info msg="POST /api/v1/cart" status=201 took_ms=18',
    'level=info msg="GET /api/v1/checkout" status=200 took_ms=41',
    'level=info msg="GET /healthz" status=200 took_ms=1',
    'level=info msg="GET /api/v1/orders" status=200 took_ms=23',
    'level=info msg="reloaded price list" items=1204',
]


def checkout(api: dict, worker: dict) -> list:
    """The demo's checkout: payments-api calls payments-worker, whose Redis read takes 150 of the request's 200 ms."""
    Spec = send_traces().Spec
    return [
        Spec("api", "payments-api", "GET /api/v1/checkout", 0, 200, attributes={"http.method": "GET"}, **api),
        Spec("orders", "payments-worker", "POST /orders", 20, 175, parent="api", **worker),
        Spec("cart", "payments-worker", "redis GET cart", 30, 150, parent="orders", kind="client",
             attributes={"db.system": "redis", "db.statement": "GET cart:42", "peer.service": "redis"}, **worker),
        Spec("save", "payments-worker", "INSERT orders", 182, 10, parent="orders", kind="client", **worker),
    ]  # fmt: skip


def failed_payment(api: dict, worker: dict) -> list:
    """The demo's failed payment: the worker's charge fails and the API answers 502."""
    Spec = send_traces().Spec
    return [
        Spec("api", "payments-api", "POST /api/v1/payments", 0, 80, error=True,
             attributes={"http.method": "POST", "http.status_code": 502}, **api),
        Spec("charge", "payments-worker", "charge card", 10, 60, parent="api", error=True,
             events=[(65, "exception", {"exception.type": "CardDeclined", "exception.message": "card declined"})],
             **worker),
    ]  # fmt: skip


@pytest.fixture
def shop(victorialogs, jaeger):
    """A cluster with a log store and a Jaeger; payments-api and payments-worker (Deployment, ReplicaSet, Pod) in a
    namespace of their own; a developer of the project holding it; the two demo traces sent from those pods and
    the lines the API pod wrote (info lines over the last hour, an error and a warning carrying trace ids)."""
    cache.clear()
    cluster = ClusterFactory(
        name=unique("prod-sh"), logs_url=victorialogs.url, logs_backend="victorialogs", jaeger_url=jaeger.url
    )
    ns = unique("payments")
    namespace(cluster, ns)
    pods = {}
    for app in ("payments-api", "payments-worker"):
        labels = {"app": app}
        rs = replicaset(cluster, f"{app}-7c9f8b6d5", ns, deployment(cluster, app, ns, replicas=1, ready=1), labels)
        pods[app] = pod(cluster, f"{app}-7c9f8b6d5-{unique('x')[-5:]}", ns, labels=labels, owner=rs).name
    synced(cluster)
    developer = UserFactory()
    project = Project.objects.create(cluster=cluster, slug=unique("p"), name="Payments", namespaces=[ns])
    grant(developer, "developer", project=project)

    api = {"namespace": ns, "pod": pods["payments-api"], "container": "app"}
    worker = {"namespace": ns, "pod": pods["payments-worker"], "container": "app"}
    failed = jaeger.send(failed_payment(api, worker))
    slow = jaeger.send(checkout(api, worker))
    jaeger.wait_for_trace(failed, spans=2)
    jaeger.wait_for_trace(slow, spans=4)
    now = datetime.now(UTC)
    lines = [
        {**api, "level": "info", "time": now - timedelta(minutes=50 - 6 * i), "line": text}
        for i, text in enumerate(INFO_LINES)
    ]
    lines += [
        {**api, "level": "error", "time": now - timedelta(seconds=2),
         "line": f'level=error msg="payment failed" status=502 trace_id={failed}'},
        {**api, "level": "warn", "time": now - timedelta(seconds=1),
         "line": f'level=warn msg="slow request GET /api/v1/checkout" took_ms=200 trace_id={slow}'},
        {**worker, "level": "info", "time": now - timedelta(seconds=1),
         "line": f'level=info msg="redis GET cart" took_ms=150 trace_id={slow}'},
    ]  # fmt: skip
    victorialogs.push(lines)
    victorialogs.wait_for(f'{{namespace="{ns}"}}', len(lines))
    return {"cluster": cluster, "ns": ns, "pods": pods, "developer": developer, "slow": slow, "failed": failed}


def save(page, name: str) -> None:
    """A full-page picture for the documentation, once the page is seen not to run wider than the window."""
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / f"{name}.png"), full_page=True)


def reads_in(locator, language: str) -> None:
    """The element has words, in English with Latin letters, in Chinese with none."""
    text = locator.inner_text().strip()
    assert text
    assert bool(LATIN.search(text)) == (language == "en"), text


def open_as(page, live_server, user, language: str) -> list[str]:
    """Sign ``user`` in at 1400 px in ``language``; the script errors and CSP refusals the pages will log."""
    problems = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.set_viewport_size({"width": 1400, "height": 900})
    sign_in_page(page, user)
    page.context.add_cookies([{"name": "kubemate_language", "value": language, "url": live_server.url}])
    return problems


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_from_a_pods_warning_line_to_the_slow_span_of_its_trace(page, live_server, shop, language):
    words, suffix = WORDS[language], "" if language == "en" else "-zh"
    pods, slow = shop["pods"], shop["slow"]
    problems = open_as(page, live_server, shop["developer"], language)

    # The pod's page links to its logs; the search opens with the pod filled in.
    page.goto(f"/clusters/{shop['cluster'].pk}/pods/{shop['ns']}/{pods['payments-api']}/")
    expect(page.locator("[data-testid=telemetry-logs]")).to_have_text(words["search_logs"])
    page.click("[data-testid=telemetry-logs]")
    expect(page.locator("h2.page-title")).to_have_text(words["logs"])
    expect(page.locator("[data-testid=logs-namespace]")).to_have_value(shop["ns"])
    expect(page.locator("[data-testid=logs-pod]")).to_have_value(pods["payments-api"])
    expect(page.locator("[data-testid=log-line]")).to_have_count(10)  # the API pod's lines, not the worker's

    # Warnings only: the warning line, with its trace link.
    warn = page.locator("[data-testid=logs-level-warn]")
    expect(page.locator("label:has([data-testid=logs-level-warn]) .form-check-label")).to_have_text(words["warn"])
    warn.check()
    page.click("[data-testid=logs-run]")
    line = page.locator("[data-testid=log-line]")
    expect(line).to_have_count(1)
    expect(line).to_have_attribute("data-level", "warn")
    expect(page).to_have_url(re.compile(r"[?&]level=warn(&|$)"))
    expect(line.locator("[data-testid=log-text]")).to_contain_text("slow request GET /api/v1/checkout")
    expect(line.locator("[data-testid=log-level]")).to_have_text(words["warn"])
    expect(line.locator("[data-testid=log-trace]")).to_have_text(words["trace"])
    for testid in ("logs-run", "logs-live", "logs-download", "logs-levels", "log-trace"):
        reads_in(page.locator(f"[data-testid={testid}]"), language)
    save(page, f"logs-search{suffix}")

    # The trace: the Redis read is three quarters of the request, starts at 15 % of it, and the request's end
    # waited for all of it (the critical path runs through its whole bar).
    line.locator("[data-testid=log-trace]").click()
    expect(page).to_have_url(re.compile(rf"/observability/traces/{shop['cluster'].pk}/{slow}/$"))
    expect(page.locator("[data-testid=trace-id]")).to_have_text(slow)
    expect(page.locator("[data-testid=trace-duration]")).to_have_text("200ms")
    rows = page.locator("[data-testid=span-row]")
    expect(rows).to_have_count(4)
    root = rows.first
    redis = page.locator("[data-testid=span-row][data-operation='redis GET cart']")
    expect(root).to_have_attribute("data-operation", "GET /api/v1/checkout")
    expect(redis).to_have_attribute("data-service", "payments-worker")
    expect(redis).to_have_attribute("data-depth", "2")
    expect(redis.locator("[data-testid=span-duration]")).to_have_text("150ms")
    expect(redis).to_have_attribute("data-critical", "true")
    expect(redis.locator("[data-testid=span-critical]")).to_have_count(1)
    root_bar, redis_bar = root.locator(".traces-bar").bounding_box(), redis.locator(".traces-bar").bounding_box()
    critical = redis.locator("[data-testid=span-critical]").bounding_box()
    assert redis_bar["width"] / root_bar["width"] == pytest.approx(0.75, abs=0.01)
    assert (redis_bar["x"] - root_bar["x"]) / root_bar["width"] == pytest.approx(0.15, abs=0.01)
    assert critical["width"] == pytest.approx(redis_bar["width"], abs=1)
    for i in range(4):  # each duration is written within the lane, whatever the bar's place
        lane, label = rows.nth(i).locator(".traces-lane").bounding_box(), rows.nth(i).locator(".traces-label")
        box = label.bounding_box()
        assert lane["x"] - 1 <= box["x"] and box["x"] + box["width"] <= lane["x"] + lane["width"] + 1
    durations = [int(rows.nth(i).get_attribute("data-duration-us")) for i in range(4)]
    assert sorted(durations) == [10_000, 150_000, 175_000, 200_000]  # the slowest leaf: nothing else is close

    # Its details name the pod it ran in, with a link to that pod's logs.
    redis.click()
    detail = page.locator("[data-testid=span-detail]:visible")
    expect(detail).to_have_count(1)
    expect(detail.locator("[data-testid=span-pod-logs]")).to_contain_text(pods["payments-worker"])
    expect(detail.locator("[data-testid=span-tags]")).to_contain_text("GET cart:42")
    expect(page.locator("[data-testid=waterfall-expand]")).to_have_text(words["expand"])
    for testid in ("waterfall-expand", "waterfall-collapse", "trace-logs"):
        reads_in(page.locator(f"[data-testid={testid}]"), language)
    reads_in(page.locator("[data-testid=trace-header] .datagrid-title").first, language)
    save(page, f"trace-waterfall{suffix}")
    assert problems == []


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_trace_search_draws_its_scatter_and_the_service_graph_its_calls(page, live_server, shop, language):
    words, suffix = WORDS[language], "" if language == "en" else "-zh"
    cluster, slow, failed = shop["cluster"], shop["slow"], shop["failed"]
    problems = open_as(page, live_server, shop["developer"], language)

    page.goto(f"/observability/traces/?cluster={cluster.pk}&service=payments-api&namespace={shop['ns']}&range=15m")
    expect(page.locator("h2.page-title")).to_have_text(words["traces"])
    expect(page.locator("[data-testid=trace-row]")).to_have_count(2)
    slow_row = page.locator(f"[data-testid=trace-row][data-trace-id='{slow}']")
    expect(slow_row.locator("[data-testid=trace-duration]")).to_have_text("200ms")
    expect(slow_row.locator("[data-testid=trace-spans]")).to_have_text("4")
    expect(page.locator(f"[data-testid=trace-row][data-trace-id='{failed}'] [data-testid=trace-errors]")).to_have_text(
        "2"
    )
    expect(page.locator("[data-testid=traces-scatter] svg")).to_be_visible()
    for testid in ("traces-find", "to-dependencies"):
        reads_in(page.locator(f"[data-testid={testid}]"), language)
    save(page, f"trace-search{suffix}")

    page.click("[data-testid=to-dependencies]")
    expect(page.locator("h2.page-title")).to_have_text(words["graph"])
    expect(page.locator("[data-testid=graph-edge][data-edge='payments-api>payments-worker']")).to_have_count(1)
    expect(page.locator("[data-testid=graph-chart] svg")).to_contain_text("↻ 2")  # the worker's calls to itself
    reads_in(page.locator("[data-testid=graph-table] thead"), language)
    save(page, f"dependencies{suffix}")
    assert problems == []
