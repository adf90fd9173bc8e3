"""The managers' weekly report gathers real rows of the week (inventory capacity, release revisions, failed jobs,
inspection runs) and a real Prometheus (usage by day, alerts that fired), keeps only numbers and ids, words them in
the reader's language on the page and in the PDF, and is emailed to a real SMTP server with its PDF."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pypdfium2 as pdfium
import pytest
from django.template.loader import render_to_string
from django.utils import timezone, translation

from apps.accounts.models import Project
from apps.core.models import Job
from apps.inspection.models import Run, Schedule, Template, WeeklyReport
from apps.inspection.reports import mail, weekly
from apps.releases.models import Release, Revision
from tests.clusters.inventory_rows import node, pod
from tests.factories import ClusterFactory, JobFactory, UserFactory
from tests.inspection.test_report_mail import Mailbox, _smtp
from tests.plugins.served import free_port

pytestmark = pytest.mark.django_db

GIB = 2**30
RULES = """
groups:
  - name: kubemate-weekly-test
    rules:
      - alert: KubemateWeeklyTest
        expr: vector(1)
        labels:
          severity: warning
"""


def _week(now):
    return now - weekly.PERIOD, now


def _revision(release, number, *, when, rollback_of=None, result=Revision.Result.SUCCEEDED):
    revision = Revision.objects.create(
        release=release, number=number, spec={}, spec_hash=str(number), result=result, rollback_of=rollback_of
    )
    Revision.objects.filter(pk=revision.pk).update(created_at=when)  # auto_now_add: moved into the past here


def _failed_job(target: str, when, kind="clusters.drain"):
    JobFactory(status=Job.Status.FAILED, target=target, kind=kind, started_at=when, finished_at=when)


def _run(template, clusters, when, scores) -> Run:
    run = Run.objects.create(
        template=template, status=Run.Status.FINISHED, created_at=when, finished_at=when, scores=scores
    )
    run.clusters.set(clusters)
    return run


@pytest.fixture
def week():
    """Two clusters and a week of rows: prod-sh (with Prometheus, filled by the test) and test-bj (without)."""
    now = timezone.now()
    start, end = _week(now)
    prod = ClusterFactory(name="prod-sh", environment="production")
    other = ClusterFactory(name="test-bj")
    node(prod, "node-1", cpu="8", memory="32Gi")
    node(prod, "node-2", cpu="8", memory="32Gi", ready=False)
    for i in range(4):
        pod(prod, f"api-{i}", "payments", cpu="500m", memory="1Gi")
    pod(prod, "done", "payments", phase="Succeeded", cpu="4", memory="8Gi")  # ended: requests nothing
    project = Project.objects.create(cluster=prod, slug="pay", name="Pay", namespaces=["payments"])
    api = Release.objects.create(project=project, namespace="payments", name="pay-api", spec={})
    web = Release.objects.create(project=project, namespace="payments", name="pay-web", spec={})
    _revision(api, 1, when=now - timedelta(days=10))  # before the week
    _revision(api, 2, when=now - timedelta(days=3))
    _revision(api, 3, when=now - timedelta(days=2), result=Revision.Result.FAILED)
    _revision(api, 4, when=now - timedelta(days=2), rollback_of=2)
    _revision(web, 1, when=now - timedelta(days=1))
    _failed_job("cluster/prod-sh/node/node-2", now - timedelta(days=1))
    _failed_job("cluster/prod-sh/namespace/payments/release/pay-api", now - timedelta(days=2), kind="releases.wait")
    _failed_job("cluster/prod-sh/node/node-1", now - timedelta(days=9))  # before the week
    _failed_job("inspection/daily", now - timedelta(hours=5), kind="inspection.run")  # no one cluster
    JobFactory(status=Job.Status.SUCCEEDED, target="cluster/prod-sh/node/node-1", finished_at=now)
    template = Template.objects.get(slug="daily-cluster-health")
    _run(template, [prod], now - timedelta(days=9), {"cluster": 10})  # before the week
    _run(template, [prod, other], now - timedelta(days=5), {"cluster": 70, "apps": 90})
    _run(template, [prod], now - timedelta(days=1), {"cluster": 85, "apps": 95})
    return {"now": now, "start": start, "end": end, "prod": prod, "other": other, "template": template}


def _prometheus(prometheus, cluster):
    """The session's Prometheus as ``cluster``'s: 3 GiB of working set, a CPU counter that grows, and
    an alert that fires."""
    cluster.prometheus_url = prometheus.url
    cluster.save(update_fields=["prometheus_url"])
    labels = {"namespace": "weekly", "pod": "weekly-0", "container": "app"}
    prometheus.exporter.set("container_memory_working_set_bytes", labels, 3 * GIB)
    for step in range(4):  # each value scraped before the next: rate() needs two samples at least
        prometheus.exporter.set("container_cpu_usage_seconds_total", labels, 1000 + 12.0 * step)
        prometheus.wait_for('container_cpu_usage_seconds_total{pod="weekly-0"}', 1000 + 12.0 * step)
    prometheus.wait_for('container_memory_working_set_bytes{pod="weekly-0"}', 3 * GIB)
    prometheus.write_rules("kubemate-weekly-test", RULES)
    prometheus.wait_for('ALERTS{alertname="KubemateWeeklyTest",alertstate="firing"}', 1, timeout=30)
    # prometheus-api-client sends range bounds rounded to whole seconds: a week ending "now" could end just before a
    # sample written within the last second.
    time.sleep(1.2)


@pytest.fixture
def alerting_metrics(metrics):
    yield metrics
    path = metrics.rules_folder / "kubemate-weekly-test.yml"
    if path.exists():
        path.unlink()
        metrics.reload()


def test_the_week_is_gathered_from_real_rows_and_prometheus_as_numbers_and_ids(week, alerting_metrics):
    _prometheus(alerting_metrics, week["prod"])
    data = weekly.gather_weekly(clusters=[week["prod"], week["other"]], start=week["start"], end=timezone.now())
    json.dumps(data)  # plain numbers, strings and lists: what a JSONField keeps
    prod, other = data["clusters"]
    assert prod["name"] == "prod-sh" and other["name"] == "test-bj"
    assert prod["capacity"] == {
        "nodes": 2,
        "nodes_ready": 1,
        "cpu_allocatable_m": 16000,
        "cpu_requested_m": 2000,
        "memory_allocatable_b": 64 * GIB,
        "memory_requested_b": 4 * GIB,
    }
    assert prod["releases"]["deploys"] == 3 and prod["releases"]["rollbacks"] == 1
    assert prod["releases"]["failed"] == 1 and prod["releases"]["releases"] == 2
    assert prod["releases"]["top"][0][1:] == ["payments", "pay-api", 2, 1, 1]  # rollbacks first
    assert prod["jobs"] == {"failed": 2, "kinds": [["clusters.drain", 1], ["releases.wait", 1]]}
    assert data["jobs"]["failed"] == 3  # the inspection job too, which is no one cluster's
    assert [r[3] for r in prod["runs"]] == [{"cluster": 70, "apps": 90}, {"cluster": 85, "apps": 95}]
    assert [r[3] for r in other["runs"]] == [{"cluster": 70, "apps": 90}]
    usage = prod["usage"]
    assert usage["state"] == "ok"
    last_cpu, last_memory = usage["points"][-1][1], usage["points"][-1][2]
    # At least this test's container (other tests of the session may have shown theirs to the same Prometheus).
    # CPU is the day's average cores: 36 CPU-seconds in the seconds the container has lived, over a day.
    assert last_memory >= 3 * GIB and last_cpu > 0
    alerts = prod["alerts"]
    assert alerts["state"] == "ok" and ["KubemateWeeklyTest", "warning", 1] in alerts["top"]
    assert other["usage"] == {"state": "not_configured", "points": []}
    assert other["alerts"] == {"state": "not_configured"}
    assert data["backups"] == "not_available"


def test_a_prometheus_that_does_not_answer_is_said_so(week):
    week["other"].prometheus_url = f"http://127.0.0.1:{free_port()}"
    week["other"].save(update_fields=["prometheus_url"])
    data = weekly.gather_weekly(clusters=[week["other"]], start=week["start"], end=week["end"])
    assert data["clusters"][0]["usage"]["state"] == "unreachable"
    assert data["clusters"][0]["alerts"] == {"state": "unreachable"}
    context = weekly.page_context(WeeklyReport(period_start=week["start"], period_end=week["end"], data=data))
    html = render_to_string("inspection/weekly/_body.html", {"weekly": context})
    assert "Prometheus did not answer when the report was made" in html


def test_the_report_is_made_worded_printed_and_emailed(week, settings):
    owner = UserFactory(is_superuser=True)
    schedule = Schedule.objects.create(
        name="monday",
        kind=Schedule.Kind.WEEKLY,
        cron="0 8 * * 1",
        timezone="Asia/Shanghai",
        recipients=["cio@bank.example"],
        language="zh-hans",
        owner=owner,
    )
    report = weekly.make_weekly_report(schedule=schedule, actor=owner, clusters=[week["prod"], week["other"]])
    report.refresh_from_db()
    assert set(report.clusters.values_list("name", flat=True)) == {"prod-sh", "test-bj"}
    assert report.period_end - report.period_start == weekly.PERIOD
    assert report.data["clusters"][0]["releases"]["rollbacks"] == 1
    with translation.override("en"):
        context = weekly.page_context(report)
        html = render_to_string("inspection/weekly/_body.html", {"report": report, "weekly": context})
    assert 'data-cluster="prod-sh"' in html and 'data-testid="rollbacks">1<' in html
    assert 'data-testid="cpu-requested" data-percent="12"' in html  # 2 of 16 cores
    assert "No Prometheus is configured for this cluster" in html
    assert html.count('data-testid="score-trend"') == 1  # prod-sh: two runs of the template this week
    document = pdfium.PdfDocument(weekly.render_pdf(report, "zh-hans"))
    text = "\n".join(page.get_textpage().get_text_range() for page in document)
    assert "prod-sh" in text and "pay-api" in text
    assert "集群" in text  # the inspection domains' names, in Chinese
    box = Mailbox()
    try:
        _smtp(settings, box.port)
        mail.send_weekly_report(report.pk)
        message = box.wait_for(lambda m: m["To"] == "cio@bank.example")
    finally:
        box.stop()
    attachments = list(message.iter_attachments())
    assert [a.get_filename() for a in attachments] == [f"weekly-{report.period_end:%Y-%m-%d}.pdf"]
    assert attachments[0].get_content().startswith(b"%PDF-")
    assert "prod-sh" in Mailbox.text(message)
    report.refresh_from_db()
    assert report.email_state == Run.Email.SENT and report.email_attempts == 1
