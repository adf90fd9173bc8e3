"""The whole path of a scheduled inspection on real parts: a worker that also runs beat and the inventory sync (as
the demo and production run it), the sandbox cluster, a schedule written as a django-celery-beat entry, a real SMTP
server. The schedule's run compares with the run before it (one workload fixed, one new) and its report arrives by
email in the schedule's language with the PDF attached; the run's email state says sent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone
from django_celery_beat.models import PeriodicTask, PeriodicTasks
from kubernetes import client as k8s

from apps.clusters.models import Resource
from apps.inspection import services
from apps.inspection.models import Finding, Run, Schedule, Template
from kubemate.celery import app
from tests.factories import AdminFactory
from tests.helpers import deployment, wait_for
from tests.plugins.alertmanager import Mailbox

pytestmark = [pytest.mark.sandbox, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CHECK = "cluster.workloads.no_readiness_probe"


@pytest.fixture
def mailbox(settings):
    box = Mailbox()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", box.port, False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.DEFAULT_FROM_EMAIL = "kubemate@bank.example"
    yield box
    box.controller.stop()


def _in_inventory(cluster, namespace, name) -> bool:
    """The Deployment and its pods are rows (the probe check reads the pods: a run right after the Deployment's
    row, before its pods were created and synced, would find nothing)."""
    rows = Resource.objects.filter(cluster=cluster, namespace=namespace)
    return (
        rows.filter(kind="Deployment", name=name).exists()
        and rows.filter(kind="Pod", name__startswith=f"{name}-").exists()
    )


def _finished(query) -> list[Run]:
    return [r for r in query if r.status in (Run.Status.FINISHED, Run.Status.FAILED)]


def test_a_scheduled_inspection_runs_from_beat_compares_and_emails_its_pdf(
    settings, sandbox, registered_cluster, namespace, mailbox
):
    apps_api = k8s.AppsV1Api(sandbox.api_client)
    owner = AdminFactory(email="owner@bank.example")
    template = Template.objects.create(slug="probes", name="Probes", checks=[CHECK])
    schedule = services.save_schedule(
        actor=owner,
        name="Morning",
        kind=Schedule.Kind.INSPECTION,
        template=template,
        clusters=[registered_cluster],
        cron="* * * * *",
        tz="Asia/Shanghai",
        enabled=False,
        recipients=["ops@bank.example"],
        language="zh-hans",
    )
    apps_api.create_namespaced_deployment(namespace, deployment("first"))
    settings.KUBEMATE_WORKER_BEAT = True
    settings.KUBEMATE_WORKER_SYNC = True

    with start_worker(app, pool="threads", concurrency=3, perform_ping_check=False, loglevel="WARNING"):
        assert wait_for(lambda: _in_inventory(registered_cluster, namespace, "first"), 60), "the sync did not list"
        first = services.start_run(actor=owner, template=template, schedule=schedule)
        assert wait_for(lambda: _finished(Run.objects.filter(pk=first.pk)), 120), "the first run did not finish"

        apps_api.delete_namespaced_deployment("first", namespace)
        apps_api.create_namespaced_deployment(namespace, deployment("second"))
        assert wait_for(
            lambda: (
                _in_inventory(registered_cluster, namespace, "second")
                and not Resource.objects.filter(
                    cluster=registered_cluster, kind="Deployment", namespace=namespace, name="first"
                ).exists()
            ),
            60,
        )
        # The schedule is switched on with its last run minutes ago: beat finds it due at its next tick.
        Schedule.objects.filter(pk=schedule.pk).update(enabled=True)
        PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(
            enabled=True, last_run_at=timezone.now() - timedelta(minutes=5)
        )
        PeriodicTasks.update_changed()
        scheduled = wait_for(lambda: _finished(Run.objects.filter(schedule=schedule).exclude(pk=first.pk)), 150)
        assert scheduled, "beat did not start the schedule's run"
        run = scheduled[0]
        # The first run mailed its report too: the scheduled run's is the second to arrive.
        assert wait_for(lambda: Run.objects.get(pk=run.pk).email_state == Run.Email.SENT, 120), "not emailed"
        mailbox.wait_for(lambda m: len([x for x in mailbox.messages if "ops@bank.example" in x["To"]]) >= 2, 30)
        letter = [m for m in mailbox.messages if "ops@bank.example" in m["To"]][-1]

    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED and run.actor == owner and run.previous_id == first.pk
    mine = Finding.objects.filter(run=run, check_id=CHECK, namespace=namespace)
    assert set(mine.values_list("change", "subject")) == {
        ("new", f"Deployment {namespace}/second"),
        ("fixed", f"Deployment {namespace}/first"),
    }
    assert run.counts["new"] >= 1 and run.counts["fixed"] >= 1
    attachments = [part for part in letter.iter_attachments() if part.get_content_type() == "application/pdf"]
    assert len(attachments) == 1 and attachments[0].get_content().startswith(b"%PDF")
    assert "巡检" in letter["Subject"] + Mailbox.text(letter)  # the schedule's language for an outside address
