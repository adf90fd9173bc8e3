"""Screenshots of the pages this round changed, read from the bank's inventory rows (no cluster is called), so a
person can judge them as an operator would: the jobs list and a job, one's settings, the audit log, nodes with
their usage, a ConfigMap and a Secret, a release with its pods."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.core import audit
from apps.core.models import Job, JobLogLine
from apps.releases.render import RELEASE_LABEL
from tests.clusters.inventory_rows import add, build_bank, meta, metrics, pod
from tests.factories import AdminFactory, JobFactory
from tests.helpers import sign_in_page
from tests.releases.helpers import release_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_changed_pages_read_well(page, screenshot, live_server, language):
    bank = build_bank()
    cluster = bank["cluster"]
    admin = AdminFactory()
    metrics(cluster, "NodeMetrics", "node-1", cpu=6000, memory=8 * 2**30)
    add(
        cluster,
        "ConfigMap",
        {
            "metadata": meta("pay-config", "payments"),
            "data": {"LOG_LEVEL": "info", "app.yaml": "port: 8080\ntimeout: 30s\n"},
        },
    )
    release = release_in(bank["payments"])
    pod(cluster, "payments-api-5d8-x", "payments", labels={RELEASE_LABEL: release.name})
    failed = JobFactory(
        actor=admin,
        title="Drain node node-9",
        status=Job.Status.FAILED,
        progress=40,
        message="Gave up after 300 s: the disruption budget pay-pdb does not allow evicting pay-api-1.",
        created_at=timezone.now() - timedelta(hours=2),
        finished_at=timezone.now(),
    )
    JobLogLine.objects.create(job=failed, message="Cordoning node node-9 so that no new pods land on it.")
    JobFactory(actor=admin, title="Roll out payments-api revision 2", status=Job.Status.RUNNING, progress=60)
    audit.record(
        actor=admin,
        action="clusters.workload.scale",
        cluster=cluster.name,
        namespace="payments",
        kind="Deployment",
        name="pay-api",
        reason="CHG-20261204-007 peak season",
    )
    sign_in_page(page, admin)
    page.context.add_cookies([{"name": "kubemate_language", "value": language, "url": live_server.url}])
    suffix = "" if language == "en" else "-zh"

    for name, url in (
        ("jobs", "/jobs/"),
        ("job-failed", f"/jobs/{failed.pk}/"),
        ("settings", "/accounts/me/settings/"),
        ("audit", "/accounts/audit/"),
        ("nodes", f"/clusters/{cluster.pk}/nodes/"),
        ("configmap", f"/clusters/{cluster.pk}/configmaps/payments/pay-config/"),
        ("secret", f"/clusters/{cluster.pk}/secrets/payments/db-password/"),
        ("pods", f"/clusters/{cluster.pk}/pods/?namespace=payments"),
        ("release", f"/releases/{release.pk}/"),
    ):
        page.goto(url)
        expect(page.locator("h2.page-title")).to_be_visible()
        screenshot(f"look-{name}{suffix}")


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_observability_setting_pages_read_well(page, screenshot, live_server, language):
    """Alert rules, notification receivers, the rendered alertmanager.yml and the cluster's sign-in settings, on a
    cluster without Prometheus or Alertmanager (each page says so in words)."""
    from apps.observability.models import AlertRule, Receiver

    bank = build_bank()
    cluster, project = bank["cluster"], bank["payments"]
    admin = AdminFactory()
    AlertRule.objects.create(
        cluster=cluster,
        namespace="payments",
        name="payments-memory",
        alert="PaymentsMemoryHigh",
        expr='100 * sum by (namespace, pod) (container_memory_working_set_bytes{namespace="payments"}) > 80',
        template="memory_percent",
        params={"workload": "payments", "threshold": 80},
        summary="Pod of payments uses more than 80 % of its memory limit.",
    )
    Receiver.objects.create(
        project=project,
        name="pay-mail",
        kind="email",
        options={"to": ["ops@bank.example"], "from": "am@bank.example", "smarthost": "smtp.bank.example:25"},
        severities=["critical", "warning"],
    )
    sign_in_page(page, admin)
    page.context.add_cookies([{"name": "kubemate_language", "value": language, "url": live_server.url}])
    suffix = "" if language == "en" else "-zh"

    for name, url in (
        ("rules", f"/observability/rules/{cluster.pk}/"),
        ("rule-form", f"/observability/rules/{cluster.pk}/new/"),
        ("receivers", f"/observability/notify/{project.pk}/"),
        ("receiver-form", f"/observability/notify/{project.pk}/new/"),
        ("alertmanager-yml", f"/observability/notify/{project.pk}/alertmanager.yml/"),
        ("cluster-settings", f"/clusters/registry/{cluster.pk}/settings/"),
    ):
        page.goto(url)
        expect(page.locator("h2.page-title")).to_be_visible()
        screenshot(f"look-{name}{suffix}")


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_stack_status_the_links_and_a_silent_log_store_read_well(page, screenshot, live_server, language):
    """The observability status page (a log store that does not answer, Jaeger not set), a pod's page with its
    links to logs and traces, and the log search when the store does not answer: each says so in words."""
    bank = build_bank()
    cluster = bank["cluster"]
    cluster.logs_url = "http://127.0.0.1:9"
    cluster.save()
    admin = AdminFactory()
    sign_in_page(page, admin)
    page.context.add_cookies([{"name": "kubemate_language", "value": language, "url": live_server.url}])
    suffix = "" if language == "en" else "-zh"

    page.goto("/observability/status/")
    expect(page.locator("[data-testid=stack-row][data-system=logs]")).to_have_attribute("data-state", "down")
    screenshot(f"look-stack-status{suffix}")
    page.goto(f"/clusters/{cluster.pk}/pods/payments/pay-api-7c9f-a/")
    expect(page.locator("[data-testid=telemetry-logs]")).to_be_visible()
    screenshot(f"look-pod-links{suffix}")
    page.locator("[data-testid=telemetry-logs]").click()
    expect(page.locator("h2.page-title")).to_be_visible()
    page.wait_for_load_state("networkidle")
    screenshot(f"look-logs-store-down{suffix}")


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_inspection_pages_read_well(page, screenshot, live_server, language):
    """Inspections on the bank's inventory rows (the cluster's API server points nowhere: its control-plane checks
    say they could not look): two runs of the daily template so the report shows new and fixed, the templates, a
    schedule, the hosts and databases, a weekly report."""
    from apps.inspection import runner, services
    from apps.inspection.models import DatabaseTarget, HostAgent, Run, Schedule, Template

    bank = build_bank()
    cluster = bank["cluster"]
    admin = AdminFactory()
    daily = Template.objects.get(slug="daily-cluster-health")
    for second in (False, True):
        if second:
            pod(cluster, "pay-api-7c9f-c", "payments", labels={"app": "pay-api"}, waiting="CrashLoopBackOff")
        run = Run.objects.create(template=daily, actor=admin)
        run.clusters.set([cluster])
        run = runner.execute(run, lambda percent, message: None)
    services.save_schedule(
        actor=admin,
        name="Morning health check",
        kind=Schedule.Kind.INSPECTION,
        template=daily,
        clusters=[cluster],
        cron="0 7 * * *",
        tz="Asia/Shanghai",
        enabled=True,
        recipients=["ops@bank.example", "cio@bank.example"],
        language="zh-hans",
    )
    HostAgent.objects.create(
        name="node-1",
        url="https://10.0.0.11:9443",
        token_encrypted="x",
        cluster=cluster,
        fingerprint="AB:" * 31 + "AB",
        agent_version="0.1.0",
    )
    DatabaseTarget.objects.create(
        name="core-banking",
        engine="postgresql",
        host="10.0.0.21",
        port=5432,
        database="core",
        username="inspect_ro",
        cluster=cluster,
        namespace="payments",
    )
    weekly = services.make_weekly(actor=admin, clusters=[cluster])
    sign_in_page(page, admin)
    page.context.add_cookies([{"name": "kubemate_language", "value": language, "url": live_server.url}])
    suffix = "" if language == "en" else "-zh"

    for name, url in (
        ("inspections", "/inspection/"),
        ("inspection-report", f"/inspection/runs/{run.pk}/"),
        ("inspection-templates", "/inspection/templates/"),
        ("inspection-template-form", "/inspection/templates/new/"),
        ("inspection-schedules", "/inspection/schedules/"),
        ("inspection-targets", "/inspection/targets/"),
        ("inspection-weekly", f"/inspection/weekly/{weekly.pk}/"),
    ):
        page.goto(url)
        expect(page.locator("h2.page-title")).to_be_visible()
        screenshot(f"look-{name}{suffix}")


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_cicd_pages_read_well(page, screenshot, live_server, language, oci_registry, tmp_path, settings):
    """CI/CD on real builds and scans (crane, osv-scanner, the registry; no cluster: the pipelines do not deploy):
    a jar pipeline with a blocked run, an exception and passing runs (history and trends), a repository pipeline,
    the registries with their tags, the policies and exceptions, the vulnerability database."""
    from apps.cicd import services, tasks
    from apps.cicd.catalogue import vulndb
    from apps.cicd.models import Pipeline, Registry
    from tests.plugins.registry import cicd_samples

    settings.KUBEMATE_CICD_STORAGE = tmp_path / "cicd"
    samples = cicd_samples()
    bank = build_bank()
    cluster, project = bank["cluster"], bank["payments"]
    admin = AdminFactory()
    registry = services.save_registry(
        actor=admin, registry=Registry(name="harbor-prod", host=oci_registry.host, insecure=True, cluster=cluster)
    )
    ref = oci_registry.ref("base/debian-jre", "17")
    samples.push_base_image(str(oci_registry.crane_path), ref, folder=tmp_path / "base")
    base = services.approve_base(
        actor=admin,
        project=project,
        name="Debian 12 JRE 17",
        reference=ref,
        registry=registry,
        description="The bank's approved Java base.",
    )
    bundle = samples.write_osv_bundle(tmp_path / "osv-2026-12-01.zip", created="2026-12-01T00:00:00Z")
    vulndb.import_bundle(actor=admin, filename=bundle.name, chunks=[bundle.read_bytes()])
    orders = services.save_pipeline(
        actor=admin,
        pipeline=Pipeline(
            project=project,
            namespace="payments",
            name="orders",
            base_image=base,
            registry=registry,
            repository="payments/orders",
            deploy_mode=Pipeline.DeployMode.NONE,
            description="Orders service, from the jar the team hands over.",
        ),
    )
    jar = samples.build_sample_jar(tmp_path / "orders-1.4.2.jar")
    upload = services.add_upload(actor=admin, pipeline=orders, filename=jar.name, chunks=[jar.read_bytes()])
    runs = []
    for n in range(4):
        if n == 1:
            services.grant_exception(
                actor=admin,
                project=project,
                vuln_id="CVE-2021-44228",
                package="org.apache.logging.log4j:log4j-core",
                reason="CHG-2026-1204: vendor hotfix applied",
                days=30,
            )
            services.save_policy(
                actor=admin, project=project, block_on="critical", max_concurrent_runs=2, keep_days=30, keep_runs=20
            )
        run = services.start_run(actor=admin, pipeline=orders, upload=upload)
        services.dispatch(project.pk)
        run.refresh_from_db()
        tasks.execute_run(str(run.job_id), run.pk)
        runs.append(run)
    blocked, passed = runs[0], runs[-1]
    services.save_pipeline(
        actor=admin,
        pipeline=Pipeline(
            project=project,
            namespace="payments",
            name="portal",
            kind=Pipeline.Kind.REPOSITORY,
            git_url="https://git.bank.example/web/portal.git",
            git_branch="main",
            registry=registry,
            repository="payments/portal",
            deploy_mode=Pipeline.DeployMode.NONE,
            webhook_owner=admin,
        ),
    )
    sign_in_page(page, admin)
    page.context.add_cookies([{"name": "kubemate_language", "value": language, "url": live_server.url}])
    suffix = "" if language == "en" else "-zh"
    for name, url in (
        ("cicd-pipelines", "/cicd/"),
        ("cicd-pipeline", f"/cicd/pipelines/{orders.pk}/"),
        ("cicd-pipeline-form", f"/cicd/pipelines/{orders.pk}/edit/"),
        ("cicd-run-blocked", f"/cicd/runs/{blocked.pk}/"),
        ("cicd-run-passed", f"/cicd/runs/{passed.pk}/"),
        ("cicd-scan-report", f"/cicd/runs/{passed.pk}/scan/"),
        ("cicd-registries", "/cicd/registries/"),
        ("cicd-registry", f"/cicd/registries/{registry.pk}/?repository=payments/orders"),
        ("cicd-policies", "/cicd/policies/"),
        ("cicd-vulndb", "/cicd/vulnerability-database/"),
    ):
        page.goto(url)
        expect(page.locator("h2.page-title")).to_be_visible()
        screenshot(f"look-{name}{suffix}")
