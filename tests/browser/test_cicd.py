"""A pipeline from the console, in English and in Chinese: create it for a jar on the approved base, upload the jar
and run it, watch the stages move (source, build, scan) while a real worker runs them, see the run blocked by the
planted critical vulnerability, and open the scan report with its blocking findings and fixed versions."""

import re

import pytest
from playwright.sync_api import expect

from apps.cicd.models import Pipeline, Run
from tests.cicd.conftest import base, registry, samples, team, vulndb  # noqa: F401 (fixtures)
from tests.helpers import sign_in_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.sandbox,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
WORDS = {
    "en": {"title": "Scan report", "blocked": "Blocked by policy", "critical": "Critical"},
    "zh-hans": {"title": "扫描报告", "blocked": "被策略阻止", "critical": "严重"},
}


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_create_a_jar_pipeline_run_it_watch_its_stages_and_open_the_scan_report(
    language,
    page,
    screenshot,
    live_server,
    team,  # noqa: F811
    base,  # noqa: F811
    registry,  # noqa: F811
    vulndb,  # noqa: F811
    samples,  # noqa: F811
    celery_worker_thread,
    tmp_path,
):
    words = WORDS[language]
    sign_in_page(page, team["user"])
    page.context.add_cookies([{"name": "kubemate_language", "value": language, "url": live_server.url}])
    page.goto("/cicd/")
    expect(page.get_by_test_id("pipelines-empty")).to_be_visible()
    page.get_by_test_id("pipeline-new").click()

    page.get_by_test_id("field-project").select_option(str(team["project"].pk))
    page.get_by_test_id("field-namespace").select_option(team["namespace"])
    page.get_by_test_id("field-name").fill("orders")
    page.get_by_test_id("field-kind").select_option("jar")
    expect(page.get_by_test_id("repository-section")).to_be_hidden()
    page.get_by_test_id("field-base_image").select_option(str(base.pk))
    page.get_by_test_id("field-registry").select_option(str(registry.pk))
    page.get_by_test_id("field-repository").fill(f"team/orders-{language}")
    page.get_by_test_id("field-deploy_mode").select_option("direct")
    screenshot(f"cicd-pipeline-form-{language}")
    page.get_by_test_id("pipeline-save").click()
    expect(page).to_have_url(re.compile(r"/cicd/pipelines/\d+/$"))
    pipeline = Pipeline.objects.get(name="orders", project=team["project"])
    assert pipeline.created_by == team["user"] and pipeline.base_image == base

    page.get_by_test_id("upload-file").set_input_files(str(samples.build_sample_jar(tmp_path / "orders-1.4.2.jar")))
    page.get_by_test_id("upload-run").click()
    expect(page).to_have_url(re.compile(r"/cicd/runs/\d+/$"))
    strip = page.get_by_test_id("stage-strip")
    expect(strip.locator("[data-testid=stage]")).to_have_count(5)
    # The stages move as the worker runs them: the page polls and each turns green, then the scan stops the run.
    expect(strip.locator("[data-stage=source][data-status=succeeded]")).to_be_visible(timeout=60_000)
    expect(strip.locator("[data-stage=build][data-status=succeeded]")).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("run-status")).to_have_text(words["blocked"], timeout=60_000)
    expect(strip.locator("[data-stage=scan][data-status=failed]")).to_be_visible()
    expect(strip.locator("[data-stage=push][data-status=skipped]")).to_be_visible()
    run = Run.objects.get(pipeline=pipeline)
    assert run.status == Run.Status.BLOCKED and run.actor == team["user"]
    screenshot(f"cicd-run-blocked-{language}")

    page.get_by_test_id("scan-report-link").click()
    expect(page.locator("h2.page-title")).to_contain_text(words["title"])
    planted = page.locator(f'[data-testid=finding][data-vuln="{samples.SAMPLE_MAVEN_ID}"]')
    expect(planted).to_have_attribute("data-blocking", "yes")
    expect(planted).to_contain_text(words["critical"])
    expect(planted).to_contain_text("2.17.1")
    expect(planted).to_contain_text("org.apache.logging.log4j:log4j-core")
    expect(page.get_by_test_id("count-critical")).to_have_text("1")
    screenshot(f"cicd-scan-report-{language}")
