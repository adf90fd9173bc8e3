"""Inspection pages beyond the URL sweep: a project user reads only their namespaces' findings and no whole-run
scores; the progress partial hands over to the report once the run has ended; the PDF download is audited; forms
answer in sentences; run now goes through the service as the person."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Project
from apps.core.models import AuditEvent
from apps.inspection.models import Finding, Run, Schedule, Template
from tests.factories import AdminFactory, ClusterFactory, UserFactory
from tests.helpers import grant, login

pytestmark = pytest.mark.django_db


def _finding(run, cluster, namespace, subject):
    return Finding.objects.create(
        run=run,
        check_id="cluster.workloads.no_readiness_probe",
        domain="cluster",
        severity="warning",
        target=f"cluster:{cluster.name}",
        cluster=cluster,
        namespace=namespace,
        subject=subject,
        message=f"{subject} runs containers without a readiness probe: web.",
        fingerprint=subject.ljust(64, "x")[:64],
        change="new",
    )


@pytest.fixture
def finished():
    cluster = ClusterFactory(name="prod-sh")
    admin = AdminFactory()
    template = Template.objects.get(slug="daily-cluster-health")
    run = Run.objects.create(
        template=template,
        actor=admin,
        status=Run.Status.FINISHED,
        finished_at=timezone.now(),
        scores={"cluster": 61},
        counts={"new": 2},
    )
    run.clusters.set([cluster])
    _finding(run, cluster, "payments", "Deployment payments/pay-api")
    _finding(run, cluster, "lending", "Deployment lending/loan-api")
    return run, cluster, admin


def test_a_project_user_reads_only_their_namespaces_findings(client, finished):
    run, cluster, _ = finished
    project = Project.objects.create(cluster=cluster, slug="pay", name="Pay", namespaces=["payments"])
    member = UserFactory()
    grant(member, "viewer", project=project)
    login(client, member)

    page = client.get(reverse("inspection:run_detail", args=[run.pk])).content.decode()
    home = client.get(reverse("inspection:home")).content.decode()

    assert "Deployment payments/pay-api" in page and "loan-api" not in page
    assert 'data-testid="report-partial"' in page
    assert f'data-run="{run.pk}"' in home and ">61<" not in home  # the whole run's score is not theirs


def test_a_cluster_viewer_reads_everything_and_the_whole_score(client, finished):
    run, cluster, _ = finished
    viewer = UserFactory()
    grant(viewer, "viewer", cluster=cluster)
    login(client, viewer)
    page = client.get(reverse("inspection:run_detail", args=[run.pk])).content.decode()
    home = client.get(reverse("inspection:home")).content.decode()
    assert "payments/pay-api" in page and "lending/loan-api" in page
    assert ">61<" in home
    assert 'data-testid="run-form"' not in home  # a viewer reads, does not run


def test_someone_without_the_cluster_gets_404(client, finished):
    run, _, _ = finished
    other = ClusterFactory(name="dev")
    stranger = UserFactory()
    grant(stranger, "cluster-admin", cluster=other)
    login(client, stranger)
    assert client.get(reverse("inspection:run_detail", args=[run.pk])).status_code == 404
    assert client.get(reverse("inspection:run_pdf", args=[run.pk])).status_code == 404


def test_progress_polls_while_running_and_hands_over_to_the_report_when_done(client, finished):
    run, _, admin = finished
    login(client, admin)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)
    polling = client.get(reverse("inspection:run_status", args=[run.pk]), HTTP_HX_REQUEST="true")
    assert polling.status_code == 200 and b'hx-trigger="every 2s"' in polling.content
    Run.objects.filter(pk=run.pk).update(status=Run.Status.FINISHED)
    done = client.get(reverse("inspection:run_status", args=[run.pk]), HTTP_HX_REQUEST="true")
    assert done["HX-Refresh"] == "true"


def test_the_pdf_download_is_a_pdf_and_audited(client, finished):
    run, _, admin = finished
    login(client, admin)
    response = client.get(reverse("inspection:run_pdf", args=[run.pk]))
    assert response["Content-Type"] == "application/pdf" and response.content.startswith(b"%PDF")
    assert 'filename="inspection-daily-cluster-health-' in response["Content-Disposition"]
    event = AuditEvent.objects.get(action="inspection.report.download")
    assert event.actor_id == admin.pk and event.object_name == str(run.pk)


def test_run_now_starts_a_run_as_the_person(client, monkeypatch):
    monkeypatch.setattr("apps.core.jobs._enqueue", lambda job, task, args: None)
    cluster = ClusterFactory(name="prod-bj")
    owner = UserFactory()
    grant(owner, "cluster-admin", cluster=cluster)
    login(client, owner)
    template = Template.objects.get(slug="host-baseline")
    response = client.post(reverse("inspection:run_start"), {"template": template.pk})
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("inspection:run_detail", args=[run.pk])
    assert run.actor == owner and list(run.clusters.all()) == [cluster]


def test_a_schedule_form_with_a_bad_cron_and_a_bad_address_answers_sentences(client):
    cluster = ClusterFactory()
    owner = UserFactory()
    grant(owner, "cluster-admin", cluster=cluster)
    login(client, owner)
    template = Template.objects.get(slug="daily-cluster-health")
    form = {
        "name": "Morning",
        "kind": "inspection",
        "template": template.pk,
        "cron": "0 25 * * *",
        "timezone": "Asia/Shanghai",
        "enabled": "on",
        "recipients": "ops@bank.example\nnot-an-address",
        "language": "zh-hans",
    }
    bad_address = client.post(reverse("inspection:schedule_create"), form)
    assert bad_address.status_code == 200 and "not-an-address is not an email address" in bad_address.content.decode()
    form["recipients"] = "ops@bank.example"
    bad_cron = client.post(reverse("inspection:schedule_create"), form)
    assert bad_cron.status_code == 400 and "does not parse as cron" in bad_cron.content.decode()
    assert not Schedule.objects.exists()
    form["cron"] = "0 7 * * *"
    saved = client.post(reverse("inspection:schedule_create"), form)
    assert saved.status_code == 302 and Schedule.objects.get().owner == owner


def test_the_agent_form_never_renders_the_token_back(client):
    admin = AdminFactory()
    login(client, admin)
    response = client.post(
        reverse("inspection:agent_create"),
        {"name": "node-1", "url": "https://127.0.0.1:9", "token": "s3cr3t-t0ken-value"},
    )
    body = response.content.decode()
    assert response.status_code == 400 and "s3cr3t-t0ken-value" not in body
    assert 'data-testid="form-error"' in body


def test_the_run_list_costs_the_same_queries_for_one_run_or_many(client, finished):
    run, cluster, admin = finished
    login(client, admin)
    with CaptureQueriesContext(connection) as one:
        client.get(reverse("inspection:home"))
    for _ in range(5):
        more = Run.objects.create(template=run.template, actor=admin, status=Run.Status.FINISHED)
        more.clusters.set([cluster])
    with CaptureQueriesContext(connection) as six:
        page = client.get(reverse("inspection:home")).content.decode()
    assert page.count('data-testid="run-row"') == 6
    assert len(six) == len(one)
