"""The metrics cards of the cluster, node, namespace, workload and pod pages, an app's request metrics and the
explorer, as each kind of reader gets them: what they show, what they leave out for a project's people, and the
sentence instead of a chart when Prometheus is missing, stops or has no data."""

from __future__ import annotations

import time
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Role
from tests.clusters.inventory_rows import build_bank, deployment, pod
from tests.factories import AdminFactory, UserFactory
from tests.helpers import grant, login
from tests.observability.metrics_helpers import Counters, chart_data_of, suffix, values_by_series, workload_name
from tests.releases.helpers import release_in

pytestmark = pytest.mark.django_db
MiB = 2**20
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def fast_scrapes(settings):
    settings.KUBEMATE_PROMETHEUS_SCRAPE_SECONDS = 1


@pytest.fixture(scope="module")
def written(prometheus):
    """What the exporter says for this module's tests, written once: in payments and in lending a Deployment
    "web-…" with two pods, each pod with its memory, its requests and its phase; a node's allocatable memory; the
    API server's requests."""
    apps = {}
    for namespace in ("payments", "lending"):
        name, template = workload_name(), suffix(8)
        pods = {f"{name}-{template}-{suffix()}": (100 + n) * MiB for n in range(2)}
        for pod_name, memory in pods.items():
            where = {"namespace": namespace, "pod": pod_name, "container": "app"}
            prometheus.exporter.set("container_memory_working_set_bytes", where, memory)
            prometheus.exporter.set("kube_pod_container_resource_requests", {**where, "resource": "memory"}, 128 * MiB)
            prometheus.exporter.set("kube_pod_status_phase", {**where, "phase": "Running"}, 1)
        apps[namespace] = (name, pods)
    prometheus.exporter.set("kube_node_status_allocatable", {"node": "node-1", "resource": "memory"}, 32 * 2**30)
    prometheus.exporter.set("apiserver_request_total", {"code": "200", "verb": "GET"}, 10)
    names = "|".join(pod for _name, pods in apps.values() for pod in pods)
    prometheus.wait_for(f'count(container_memory_working_set_bytes{{pod=~"{names}"}})', 4)
    prometheus.wait_for("count(apiserver_request_total)", 1)
    time.sleep(2.5)  # two scrapes more: rate() needs two samples in its window
    yield apps
    prometheus.exporter.clear()


@pytest.fixture
def bank(written, prometheus, fast_scrapes):
    """The bank's cluster reading the test Prometheus, with the written Deployments and pods in its inventory."""
    made = build_bank()
    cluster = made["cluster"]
    cluster.prometheus_url = prometheus.url
    cluster.save()
    for namespace, (name, pods) in written.items():
        deployment(cluster, name, namespace)
        for pod_name in pods:
            pod(cluster, pod_name, namespace, labels={"app": name})
    return {**made, "apps": written}


def as_user(role: str, **where) -> Client:
    user = UserFactory()
    grant(user, role, **where)
    return login(Client(), user)


def card(browser: Client, name: str, *args, **params):
    return browser.get(reverse(f"observability:{name}", args=args), {"range": "15m", **params}, **HTMX)


def chart_keys(html: str) -> list[str]:
    return [part.split('"')[0] for part in html.split('data-chart-key="')[1:]]


# What the cards show ----------------------------------------------------------------------------------------


def test_a_deployments_card_charts_its_pods_as_the_exporter_wrote_them(bank):
    admin = login(Client(), AdminFactory())
    name, pods = bank["apps"]["payments"]
    cluster = bank["cluster"].pk

    response = card(admin, "resource_metrics", cluster, "deployments", "payments", name)
    page = admin.get(reverse("observability:resource_metrics", args=[cluster, "deployments", "payments", name]))

    assert response.status_code == 200
    html = response.content.decode()
    assert chart_keys(html) == ["cpu", "memory", "restarts", "replicas"]
    data = chart_data_of(html)
    assert {pod: set(values) for pod, values in values_by_series(data, "memory").items()} == {
        pod: {float(value)} for pod, value in pods.items()
    }
    assert data["memory"]["unit"] == "bytes" and data["labels"]["cores"] == "cores"
    assert html.count('data-testid="chart-sentence"') == 3  # CPU, restarts and replicas: nothing was written
    assert 'data-testid="chart-query"' in html  # an administrator may write PromQL
    assert page.status_code == 200 and '<h2 class="page-title">' in page.content.decode()
    assert "vendor/echarts/echarts.min.js" in page.content.decode()


def test_the_node_namespace_pod_and_cluster_cards_answer_an_administrator(bank):
    admin = login(Client(), AdminFactory())
    cluster = bank["cluster"].pk
    pods = bank["apps"]["payments"][1]

    answers = {
        "cluster": card(admin, "cluster_metrics", cluster),
        "node": card(admin, "resource_metrics", cluster, "nodes", "_", "node-1"),
        "namespace": card(admin, "resource_metrics", cluster, "namespaces", "_", "payments"),
        "pod": card(admin, "resource_metrics", cluster, "pods", "payments", next(iter(pods))),
    }

    assert {place: r.status_code for place, r in answers.items()} == dict.fromkeys(answers, 200)
    keys = {place: chart_keys(r.content.decode()) for place, r in answers.items()}
    assert keys == {
        "cluster": ["cpu", "memory", "pods", "api", "cpu_by_namespace", "memory_by_namespace"],
        "node": ["cpu", "memory", "pods", "network", "disk"],
        "namespace": ["cpu", "memory", "pods", "network"],
        "pod": ["cpu", "memory", "restarts", "network"],
    }
    cluster_data = chart_data_of(answers["cluster"].content.decode())
    assert set(values_by_series(cluster_data, "memory")) == {"used", "requested", "allocatable"}
    # Other tests of the session may have written other namespaces earlier in the range.
    assert {"payments", "lending"} <= set(values_by_series(cluster_data, "memory_by_namespace"))
    assert "200" in values_by_series(cluster_data, "api")


def test_a_project_user_sees_their_namespaces_only_and_no_cluster_wide_chart(bank):
    viewer = as_user("viewer", project=bank["payments"])
    cluster = bank["cluster"].pk
    payments, lending = bank["apps"]["payments"], bank["apps"]["lending"]

    overview = card(viewer, "cluster_metrics", cluster)
    html = overview.content.decode()
    data = chart_data_of(html)

    assert overview.status_code == 200
    assert chart_keys(html) == ["cpu", "memory", "pods", "cpu_by_namespace", "memory_by_namespace"]
    assert 'data-testid="metrics-left-out"' in html
    assert set(values_by_series(data, "memory_by_namespace")) == {"payments"}
    assert set(values_by_series(data, "memory")) == {"used", "requested"}
    assert values_by_series(data, "memory")["used"][-1] == float(sum(payments[1].values()))
    assert 'data-testid="chart-query"' not in html  # a viewer does not write PromQL
    refused = {
        "node": card(viewer, "resource_metrics", cluster, "nodes", "_", "node-1"),
        "namespace lending": card(viewer, "resource_metrics", cluster, "namespaces", "_", "lending"),
        "workload in lending": card(viewer, "resource_metrics", cluster, "deployments", "lending", lending[0]),
        "pod in lending": card(viewer, "resource_metrics", cluster, "pods", "lending", next(iter(lending[1]))),
    }
    assert {what: r.status_code for what, r in refused.items()} == dict.fromkeys(refused, 404)
    own = card(viewer, "resource_metrics", cluster, "deployments", "payments", payments[0])
    assert own.status_code == 200
    assert set(values_by_series(chart_data_of(own.content.decode()), "memory")) == set(payments[1])


def test_whoever_sees_the_whole_cluster_gets_its_cluster_wide_charts(bank):
    viewer = as_user("viewer", cluster=bank["cluster"])

    html = card(viewer, "cluster_metrics", bank["cluster"].pk).content.decode()

    assert "api" in chart_keys(html) and 'data-testid="metrics-left-out"' not in html
    assert {"payments", "lending"} <= set(values_by_series(chart_data_of(html), "memory_by_namespace"))


def test_the_query_behind_a_chart_is_shown_only_to_those_who_may_write_promql(bank):
    name = bank["apps"]["payments"][0]
    cluster = bank["cluster"].pk
    developer = as_user("developer", project=bank["payments"])
    viewer = as_user("viewer", project=bank["payments"])

    shown = card(developer, "resource_metrics", cluster, "deployments", "payments", name).content.decode()
    hidden = card(viewer, "resource_metrics", cluster, "deployments", "payments", name).content.decode()

    assert shown.count('data-testid="chart-query"') == 4
    assert "container_memory_working_set_bytes{" in shown and reverse("observability:explorer") in shown
    assert 'data-testid="chart-query"' not in hidden and "container_memory_working_set_bytes" not in hidden


def test_an_apps_request_metrics_are_its_golden_signals(bank, prometheus):
    name = bank["apps"]["payments"][0]
    counters = Counters(prometheus.exporter)
    where = {"namespace": "payments", "service": name}
    for code, rate in (("200", 10.0), ("500", 0.5)):
        counters.grow("http_requests_total", {**where, "code": code}, rate)
    for le, rate in (("0.1", 6.0), ("0.25", 9.0), ("0.5", 10.0), ("+Inf", 10.5)):
        counters.grow("http_request_duration_seconds_bucket", {**where, "le": le}, rate)
    prometheus.wait_for(f'count(http_requests_total{{service="{name}"}})', 2)
    time.sleep(8)  # a rate window of samples (6 s over 15 minutes: a 5 s step and a 1 s scrape)
    developer = as_user("developer", project=bank["payments"])

    response = card(developer, "app_metrics", bank["cluster"].pk, "payments", name)
    counters.close()

    data = chart_data_of(response.content.decode())
    assert response.status_code == 200
    # rate() over a window of six scrapes extrapolates by up to one scrape interval: about 17 %.
    assert values_by_series(data, "requests")[name][-1] == pytest.approx(10.5, rel=0.2)
    assert values_by_series(data, "errors")[name][-1] == pytest.approx(100 * 0.5 / 10.5, rel=0.1)
    latency = {quantile: values[-1] for quantile, values in values_by_series(data, "latency").items()}
    assert latency == pytest.approx({"p50": 0.0875, "p95": 0.49375, "p99": 0.5}, rel=0.1)
    assert (
        card(as_user("viewer", project=bank["lending"]), "app_metrics", bank["cluster"].pk, "payments", name)
    ).status_code == 404


# The time range ---------------------------------------------------------------------------------------------


def test_seven_days_step_an_hour_and_a_custom_range_is_read_in_the_readers_time_zone(bank):
    admin = login(Client(), AdminFactory())
    session = admin.session
    session["kubemate_tz"] = "Asia/Shanghai"
    session.save()
    name = bank["apps"]["payments"][0]
    args = (bank["cluster"].pk, "deployments", "payments", name)

    week = card(admin, "resource_metrics", *args, range="7d").content.decode()
    custom = card(
        admin, "resource_metrics", *args, range="custom", **{"from": "2026-03-02T09:00", "to": "2026-03-02T12:30"}
    ).content.decode()
    backwards = card(
        admin, "resource_metrics", *args, range="custom", **{"from": "2026-03-02T12:00", "to": "2026-03-02T09:00"}
    ).content.decode()

    assert 'data-range="7d" data-step="3600"' in week
    assert 'data-range="custom" data-step="60"' in custom
    assert "2026-03-02 09:00" in custom and "2026-03-02 12:30" in custom
    assert 'value="2026-03-02T09:00"' in custom  # the inputs keep the reader's own times
    assert 'data-testid="metrics-range-problem"' in backwards
    assert "The custom range must end at least a minute after it starts" in backwards


@pytest.mark.parametrize(
    "params",
    [
        {"range": "forever"},
        {"range": "custom"},
        {"range": "custom", "from": "yesterday", "to": "2026-13-45T99:99"},
        {"range": "custom", "from": "2020-01-01T00:00", "to": "2026-01-01T00:00"},
        {"refresh": "1ms"},
        {"range": "7d" * 5000},
    ],
    ids=lambda p: repr(p)[:40],
)
def test_time_parameters_no_one_would_send_answer_the_card(bank, params):
    admin = login(Client(), AdminFactory())

    response = card(admin, "cluster_metrics", bank["cluster"].pk, **params)

    assert response.status_code == 200 and 'data-testid="metrics"' in response.content.decode()


def test_automatic_refresh_polls_the_card_with_its_range(bank):
    admin = login(Client(), AdminFactory())

    html = card(admin, "cluster_metrics", bank["cluster"].pk, range="6h", refresh="30s").content.decode()

    assert 'hx-trigger="every 30s"' in html and "X-Kubemate-Poll" in html
    assert "range=6h&amp;refresh=30s" in html


# When there is nothing to draw ------------------------------------------------------------------------------


def test_without_a_prometheus_every_card_says_so_and_administrators_get_the_settings(db):
    made = build_bank()
    cluster = made["cluster"]
    admin = login(Client(), AdminFactory())
    viewer = as_user("viewer", cluster=cluster)

    answers = {
        who: [
            browser.get(reverse("observability:cluster_metrics", args=[cluster.pk]), **HTMX),
            browser.get(
                reverse("observability:resource_metrics", args=[cluster.pk, "pods", "payments", made["pods"][0].name])
            ),
        ]
        for who, browser in (("admin", admin), ("viewer", viewer))
    }

    sentence = "No Prometheus is set for this cluster, so there are no charts."
    assert {who: [r.status_code for r in rs] for who, rs in answers.items()} == {
        "admin": [200, 200],
        "viewer": [200, 200],
    }
    assert all(sentence in r.content.decode() for rs in answers.values() for r in rs)
    settings_url = reverse("clusters:registry_settings", args=[cluster.pk])
    assert all(settings_url in r.content.decode() for r in answers["admin"])
    assert not any(settings_url in r.content.decode() for r in answers["viewer"])


def test_prometheus_stopped_mid_test_leaves_every_page_a_sentence(prometheus_to_stop, fast_scrapes):
    made = build_bank()
    cluster = made["cluster"]
    cluster.prometheus_url = prometheus_to_stop.url
    cluster.save()
    admin = login(Client(), AdminFactory())
    urls = {
        "cluster card": reverse("observability:cluster_metrics", args=[cluster.pk]),
        "workload card": reverse(
            "observability:resource_metrics", args=[cluster.pk, "deployments", "payments", "pay-api"]
        ),
        "explorer": reverse("observability:explorer") + f"?cluster={cluster.pk}&query=up",
    }
    before = {what: admin.get(url, **HTMX) for what, url in urls.items()}

    prometheus_to_stop.stop()
    after = {what: admin.get(url, **HTMX) for what, url in urls.items()}
    pages = {what: admin.get(url) for what, url in urls.items()}
    detail = admin.get(reverse("clusters:resource_detail", args=[cluster.pk, "deployments", "payments", "pay-api"]))

    assert {what: r.status_code for what, r in before.items()} == dict.fromkeys(urls, 200)
    assert not any('data-testid="metrics-sentence"' in r.content.decode() for r in before.values())
    unreachable = f"Prometheus at {prometheus_to_stop.url} could not be reached."
    assert {what: (r.status_code, unreachable in r.content.decode()) for what, r in after.items()} == dict.fromkeys(
        urls, (200, True)
    )
    assert {what: r.status_code for what, r in pages.items()} == dict.fromkeys(urls, 200)
    assert detail.status_code == 200


def test_a_workload_prometheus_knows_nothing_about_has_a_sentence_in_each_chart(bank):
    admin = login(Client(), AdminFactory())
    cluster = bank["cluster"]
    name = workload_name("quiet")
    deployment(cluster, name, "payments")

    html = card(admin, "resource_metrics", cluster.pk, "deployments", "payments", name).content.decode()

    assert html.count('data-testid="chart-sentence"') == 4
    assert "No data in this time range: this chart reads cAdvisor metrics; check that Prometheus scrapes it." in html
    assert "this chart reads kube-state-metrics metrics" in html
    assert 'data-chart="timeseries"' not in html


# The explorer -----------------------------------------------------------------------------------------------


def explore(browser: Client, cluster, query: str, **params):
    return browser.get(
        reverse("observability:explorer"), {"cluster": cluster.pk, "query": query, "range": "15m", **params}, **HTMX
    )


def test_the_explorer_runs_a_query_as_a_chart_and_a_table_of_last_values(bank):
    admin = login(Client(), AdminFactory())
    pods = "|".join(pod for _name, pods in bank["apps"].values() for pod in pods)

    response = explore(
        admin, bank["cluster"], f'sum by (namespace) (container_memory_working_set_bytes{{pod=~"{pods}"}})'
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('data-testid="explorer-row"') == 2
    sums = {ns: float(sum(pods.values())) for ns, (_name, pods) in bank["apps"].items()}
    assert {name: set(values) for name, values in values_by_series(chart_data_of(html), "explore").items()} == {
        f'{{namespace="{ns}"}}': {total} for ns, total in sums.items()
    }


def test_a_project_developers_query_reads_their_namespaces_only(bank):
    developer = as_user("developer", project=bank["payments"])

    html = explore(
        developer, bank["cluster"], "sum by (namespace) (container_memory_working_set_bytes)"
    ).content.decode()

    assert set(values_by_series(chart_data_of(html), "explore")) == {'{namespace="payments"}'}
    run = html.split('data-testid="explorer-run-query">')[1].split("</code>")[0]
    assert "payments" in unescape(run) and "lending" not in unescape(run)  # the query as run names the namespace


def test_the_explorer_is_for_those_who_may_write_promql(bank):
    viewer = as_user("viewer", cluster=bank["cluster"])  # sees every chart, writes no PromQL
    developer = as_user("developer", project=bank["payments"])

    assert viewer.get(reverse("observability:explorer"), {"query": "up"}).status_code == 404
    assert developer.get(reverse("observability:explorer"), {"query": "up"}).status_code == 200
    assert Client().get(reverse("observability:explorer")).status_code == 302


@pytest.mark.parametrize("query", ["sum(rate(x[5m])", "up{", "rate(up[5m]", "x" * 4001], ids=lambda q: q[:20])
def test_a_query_that_cannot_run_is_a_sentence(bank, query):
    admin = login(Client(), AdminFactory())

    response = explore(admin, bank["cluster"], query)

    assert response.status_code == 200 and 'data-testid="chart-sentence"' in response.content.decode()
    assert 'data-chart="timeseries"' not in response.content.decode()


def test_a_query_too_long_is_refused_before_anything_reads_it(bank):
    admin = login(Client(), AdminFactory())

    html = explore(admin, bank["cluster"], "x" * 4200).content.decode()

    assert "The query is 4200 characters long; Kubemate runs queries of at most 4000 characters." in html


def test_junk_in_the_explorers_parameters_answers_the_page(bank):
    admin = login(Client(), AdminFactory())

    answers = [
        admin.get(reverse("observability:explorer"), params).status_code
        for params in (
            {"cluster": "abc", "query": "up"},
            {"cluster": "99999999999999999999", "query": "up", "range": "x"},
            {"query": "🙂" * 500},
            {"query": "<script>alert(1)</script>"},
            {"query": "up", "refresh": "-1", "from": "0000-00-00"},
        )
    ]

    assert answers == [200] * 5


# The pages that carry the cards -----------------------------------------------------------------------------


def test_the_pages_load_their_card_only_for_those_who_may_see_its_charts(bank):
    cluster = bank["cluster"]
    name = bank["apps"]["payments"][0]
    admin = login(Client(), AdminFactory())
    Role.objects.create(slug="no-metrics", name_en="N", name_zh="N", capabilities=["workloads.view"])
    without = as_user("no-metrics", project=bank["payments"])
    detail = reverse("clusters:resource_detail", args=[cluster.pk, "deployments", "payments", name])
    card_url = reverse("observability:resource_metrics", args=[cluster.pk, "deployments", "payments", name])

    pages = {
        "detail": admin.get(detail).content.decode(),
        "overview": admin.get(reverse("clusters:cluster_overview", args=[cluster.pk])).content.decode(),
        "detail without metrics": without.get(detail).content.decode(),
    }

    assert f'hx-get="{card_url}" hx-trigger="load"' in pages["detail"]
    assert (
        f'hx-get="{reverse("observability:cluster_metrics", args=[cluster.pk])}" hx-trigger="load"' in pages["overview"]
    )
    assert 'data-testid="metrics-loading"' not in pages["detail without metrics"]
    assert without.get(card_url, **HTMX).status_code == 404


def test_a_releases_page_loads_its_request_metrics_once_its_deployment_is_known(bank):
    admin = login(Client(), AdminFactory())
    release = release_in(bank["payments"])
    page = reverse("releases:release_detail", args=[release.pk])
    app_card = reverse("observability:app_metrics", args=[bank["cluster"].pk, "payments", release.name])

    before = admin.get(page).content.decode()
    deployment(bank["cluster"], release.name, "payments")
    after = admin.get(page).content.decode()

    assert app_card not in before
    assert f'hx-get="{app_card}" hx-trigger="load"' in after
