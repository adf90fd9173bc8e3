"""A workload's metrics in the browser, in English and Chinese: the card loads on the workload's page and draws
its charts from a real Prometheus, the time range changes (7 days, then a custom range), and the explorer runs a
query. Screenshots for the record (.run/screenshots)."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.clusters.inventory_rows import build_bank, deployment, pod
from tests.factories import AdminFactory
from tests.helpers import sign_in_page
from tests.observability.metrics_helpers import Counters, suffix, workload_name

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
MiB = 2**20
WORDS = {
    "en": {"title": "Metrics", "hour": "1 hour", "memory": "Memory by pod", "explorer": "Metrics explorer"},
    "zh-hans": {"title": "指标", "hour": "1 小时", "memory": "各 Pod 的内存", "explorer": "指标探索"},
}


@pytest.fixture(scope="module")
def workload_series(prometheus):
    """A Deployment's series in the exporter, written and scraped once for both languages: three pods' memory,
    restarts and growing CPU counters, and its replicas. Its name and its pods' names."""
    name, template = workload_name("pay"), suffix(8)
    pods = [f"{name}-{template}-{suffix()}" for _ in range(3)]
    counters = Counters(prometheus.exporter)
    for n, pod_name in enumerate(pods):
        where = {"namespace": "payments", "pod": pod_name, "container": "app"}
        prometheus.exporter.set("container_memory_working_set_bytes", where, (180 + 40 * n) * MiB)
        prometheus.exporter.set("kube_pod_container_status_restarts_total", where, n)
        counters.grow("container_cpu_usage_seconds_total", where, 0.1 + 0.15 * n)
    for metric, value in (("spec_replicas", 3), ("status_replicas_available", 3), ("status_replicas_updated", 3)):
        prometheus.exporter.set(f"kube_deployment_{metric}", {"namespace": "payments", "deployment": name}, value)
    prometheus.wait_for(f'count(container_memory_working_set_bytes{{pod=~"{name}.*"}})', 3)
    time.sleep(8)  # a rate window of samples
    yield name, pods
    counters.close()


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_a_workloads_metrics_in_a_chosen_time_range(
    page, screenshot, live_server, prometheus, workload_series, settings, language
):
    settings.KUBEMATE_PROMETHEUS_SCRAPE_SECONDS = 1
    words = WORDS[language]
    bank = build_bank()
    cluster = bank["cluster"]
    cluster.prometheus_url = prometheus.url
    cluster.save()
    name, pods = workload_series
    deployment(cluster, name, "payments", replicas=3, ready=3)
    for pod_name in pods:
        pod(cluster, pod_name, "payments", labels={"app": name})
    console_errors = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    sign_in_page(page, AdminFactory())
    page.context.add_cookies([{"name": "kubemate_language", "value": language, "url": live_server.url}])
    shot = "" if language == "en" else "-zh"

    page.goto(f"/clusters/{cluster.pk}/deployments/payments/{name}/")
    metrics = page.locator("[data-testid=metrics]")
    expect(metrics.locator(".card-title")).to_have_text(words["title"])
    memory = metrics.locator("[data-chart-key=memory]")
    expect(memory.locator("h4")).to_have_text(words["memory"])
    expect(memory.locator("[data-chart] svg")).to_be_visible()
    for pod_name in pods:
        expect(memory.locator("svg")).to_contain_text(pod_name)  # the legend names each pod
    expect(metrics.locator("[data-chart-key=cpu] [data-chart] svg")).to_be_visible()
    metrics.scroll_into_view_if_needed()
    screenshot(f"metrics-workload{shot}")

    page.select_option("[data-testid=metrics-range]", "7d")
    expect(metrics).to_have_attribute("data-range", "7d")
    expect(metrics).to_have_attribute("data-step", "3600")
    expect(page.locator("[data-testid=metrics-window]")).to_contain_text(words["hour"])
    expect(metrics.locator("[data-chart-key=memory] [data-chart] svg")).to_be_visible()
    screenshot(f"metrics-workload-7d{shot}")

    page.select_option("[data-testid=metrics-range]", "custom")
    expect(page.locator("[data-testid=metrics-custom]")).to_be_visible()
    now = timezone.localtime(timezone.now())
    page.fill("[data-testid=metrics-from]", (now - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("[data-testid=metrics-to]", (now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"))
    page.click("[data-testid=metrics-apply]")
    expect(metrics).to_have_attribute("data-range", "custom")
    expect(metrics).to_have_attribute("data-step", "10")  # 30 minutes (the end is now at the latest) in 250 points
    expect(metrics.locator("[data-chart-key=memory] [data-chart] svg")).to_be_visible()

    page.goto(f"/observability/metrics/explore/?cluster={cluster.pk}")
    expect(page.locator("h2.page-title")).to_have_text(words["explorer"])
    page.fill("[data-testid=explorer-query]", f'sum by (pod) (container_memory_working_set_bytes{{pod=~"{name}.*"}})')
    page.click("[data-testid=explorer-run]")
    expect(page.locator("[data-testid=explorer-row]")).to_have_count(3)
    expect(page.locator("[data-testid=explorer-results] [data-chart] svg")).to_be_visible()
    screenshot(f"metrics-explorer{shot}")
    assert [text for text in console_errors if "Content Security Policy" in text] == []
