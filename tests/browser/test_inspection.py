"""An inspection from the console: pick the daily template, run it, watch its progress, read the report, download
its PDF; then the same report in Chinese."""

import re

import pytest
from kubernetes import client
from playwright.sync_api import expect

from apps.inspection.models import Run
from tests.factories import AdminFactory
from tests.helpers import deployment, sign_in_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.sandbox,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
KINDS = ["Namespace", "Node", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod", "Event"]


def test_run_an_inspection_watch_it_read_the_report_and_download_the_pdf(
    page,
    screenshot,
    live_server,
    sandbox,
    registered_cluster,
    namespace,
    inventory_sync,
    celery_worker_thread,
    tmp_path,
):
    client.AppsV1Api(sandbox.api_client).create_namespaced_deployment(namespace, deployment("teller"))
    inventory_sync(KINDS)
    admin = AdminFactory()
    sign_in_page(page, admin)

    page.goto("/inspection/")
    expect(page.get_by_test_id("runs-empty")).to_be_visible()
    page.get_by_test_id("run-template").select_option(label="Daily cluster health")
    page.get_by_test_id("run-start").click()

    expect(page).to_have_url(re.compile(r"/inspection/runs/\d+/$"))
    expect(page.get_by_test_id("run-progress")).to_be_visible()
    expect(page.get_by_test_id("report")).to_be_visible(timeout=120_000)
    run = Run.objects.get()
    assert run.status == Run.Status.FINISHED and run.actor == admin
    expect(page.get_by_test_id("score").first).to_be_visible()
    teller = page.locator(f'[data-testid=finding][data-subject="Deployment {namespace}/teller"]')
    expect(teller.first).to_be_visible()  # no probes, no requests: the new deployment is found
    screenshot("inspection-report")

    with page.expect_download() as download:
        page.get_by_test_id("run-pdf").click()
    saved = tmp_path / "report.pdf"
    download.value.save_as(saved)
    assert download.value.suggested_filename.startswith("inspection-daily-cluster-health-")
    assert saved.read_bytes().startswith(b"%PDF") and saved.stat().st_size > 10_000

    page.goto("/inspection/")
    expect(page.get_by_test_id("run-row")).to_have_count(1)
    page.get_by_test_id("run-row").locator("a").first.click()
    page.context.add_cookies([{"name": "kubemate_language", "value": "zh-hans", "url": live_server.url}])
    page.reload()
    expect(page.locator("h2.page-title")).to_contain_text("每日集群健康")
    screenshot("inspection-report-zh")
