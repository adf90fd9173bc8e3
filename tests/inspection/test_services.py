"""Inspection services: a run starts as the person over the clusters they may inspect, as a Job, audited; templates
and schedules are changed by those who hold inspection.schedule, each with one audit event; a schedule is a beat
entry (django-celery-beat) that follows the row; a scheduled run acts as the schedule's owner and is refused (and
audited) when the owner lost the right."""

from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask

from apps.accounts.models import Project
from apps.core.models import AuditEvent, Job
from apps.inspection import services
from apps.inspection.models import Run, Schedule, Template
from tests.factories import ClusterFactory, UserFactory
from tests.helpers import grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    """Jobs queued are recorded, not sent: these tests look at what a start writes, not at the run."""
    sent = []
    monkeypatch.setattr("apps.core.jobs._enqueue", lambda job, task, args: sent.append((task.name, args)))
    return sent


def _daily():
    return Template.objects.get(slug="daily-cluster-health")


def test_the_built_in_templates_exist_and_read_in_the_readers_language():
    from django.utils import translation

    slugs = set(Template.objects.filter(builtin=True).values_list("slug", flat=True))
    assert slugs == {"daily-cluster-health", "weekly-security", "host-baseline", "database"}
    with translation.override("zh-hans"):
        assert str(_daily()) != "Daily cluster health" and str(_daily())
    with translation.override("en"):
        assert str(_daily()) == "Daily cluster health"


def test_a_run_starts_over_the_clusters_the_person_may_inspect(queued, django_capture_on_commit_callbacks):
    mine, other = ClusterFactory(name="prod-a"), ClusterFactory(name="prod-b")
    user = UserFactory()
    grant(user, "cluster-admin", cluster=mine)
    with django_capture_on_commit_callbacks(execute=True):
        run = services.start_run(actor=user, template=_daily())
    assert list(run.clusters.all()) == [mine]
    assert run.status == Run.Status.PENDING and run.job.status == Job.Status.PENDING
    assert queued == [("inspection.run", (run.pk,))]
    event = AuditEvent.objects.get(action="inspection.run.start")
    assert event.actor_id == user.pk and event.detail["clusters"] == ["prod-a"]
    with pytest.raises(services.Refused, match="prod-b"):
        services.start_run(actor=user, template=_daily(), clusters=[other])


def test_a_viewer_may_not_run_and_nothing_is_written(queued):
    cluster = ClusterFactory()
    viewer = UserFactory()
    grant(viewer, "viewer", cluster=cluster)
    with pytest.raises(services.Refused):
        services.start_run(actor=viewer, template=_daily())
    assert not Run.objects.exists() and not Job.objects.exists()
    assert not AuditEvent.objects.filter(action="inspection.run.start").exists()


def test_a_project_developer_runs_over_their_cluster(queued):
    cluster = ClusterFactory()
    project = Project.objects.create(cluster=cluster, slug="pay", name="Pay", namespaces=["payments"])
    dev = UserFactory()
    grant(dev, "developer", project=project)
    run = services.start_run(actor=dev, template=_daily())
    assert list(run.clusters.all()) == [cluster]


def test_templates_are_saved_copied_and_deleted_with_audit_and_built_ins_stay():
    cluster = ClusterFactory()
    owner = UserFactory()
    grant(owner, "cluster-admin", cluster=cluster)
    template = services.save_template(
        actor=owner, name="Pods only", description="", checks=["cluster."], clusters=[cluster], thresholds={}
    )
    assert template.slug == "pods-only" and not template.builtin
    with pytest.raises(services.Refused, match="at least one check"):
        services.save_template(actor=owner, name="x", description="", checks=["nope"], clusters=[], thresholds={})
    with pytest.raises(services.Refused, match="Built-in"):
        services.save_template(
            actor=owner, name="x", description="", checks=["cluster."], clusters=[], thresholds={}, template=_daily()
        )
    copy = services.copy_template(actor=owner, template=_daily())
    assert copy.name == "Copy of Daily cluster health" and copy.checks == _daily().checks
    services.delete_template(actor=owner, template=copy)
    with pytest.raises(services.Refused):
        services.delete_template(actor=owner, template=_daily())
    actions = list(
        AuditEvent.objects.filter(action__startswith="inspection.template")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["inspection.template.create", "inspection.template.create", "inspection.template.delete"]


def test_a_schedule_is_a_beat_entry_that_follows_the_row():
    cluster = ClusterFactory()
    owner = UserFactory()
    grant(owner, "cluster-admin", cluster=cluster)
    schedule = services.save_schedule(
        actor=owner,
        name="Morning",
        kind=Schedule.Kind.INSPECTION,
        template=_daily(),
        clusters=[cluster],
        cron="30 7 * * 1-5",
        tz="Asia/Shanghai",
        enabled=True,
        recipients=["ops@bank.example", "ops@bank.example", "cio@bank.example"],
        language="zh-hans",
    )
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert task.task == "inspection.run_scheduled" and task.args == f"[{schedule.pk}]" and task.enabled
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("30", "7", "1-5")
    assert str(task.crontab.timezone) == "Asia/Shanghai"
    assert schedule.recipients == ["cio@bank.example", "ops@bank.example"]
    services.save_schedule(
        actor=owner,
        name="Morning",
        kind=Schedule.Kind.INSPECTION,
        template=_daily(),
        clusters=[cluster],
        cron="0 8 * * *",
        tz="UTC",
        enabled=False,
        recipients=[],
        language="en",
        schedule=schedule,
    )
    task.refresh_from_db()
    assert (task.crontab.minute, task.crontab.hour, task.enabled) == ("0", "8", False)
    services.delete_schedule(actor=owner, schedule=schedule)
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()
    actions = list(
        AuditEvent.objects.filter(action__startswith="inspection.schedule")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["inspection.schedule.create", "inspection.schedule.update", "inspection.schedule.delete"]


@pytest.mark.parametrize(
    ("cron", "words"),
    [("* * *", "five fields"), ("61 * * * *", "does not parse"), ("0 7 * * mon-xyz", "does not parse")],
)
def test_a_bad_cron_is_refused_in_words_and_nothing_is_written(cron, words):
    cluster = ClusterFactory()
    owner = UserFactory()
    grant(owner, "cluster-admin", cluster=cluster)
    with pytest.raises(services.Refused, match=words):
        services.save_schedule(
            actor=owner,
            name="Bad",
            kind=Schedule.Kind.INSPECTION,
            template=_daily(),
            clusters=[],
            cron=cron,
            tz="UTC",
            enabled=True,
            recipients=[],
            language="en",
        )
    assert not Schedule.objects.exists() and not PeriodicTask.objects.filter(task="inspection.run_scheduled").exists()


def test_a_scheduled_run_acts_as_its_owner_and_is_refused_when_the_owner_lost_the_right(queued):
    cluster = ClusterFactory()
    owner = UserFactory()
    binding = grant(owner, "cluster-admin", cluster=cluster)
    schedule = services.save_schedule(
        actor=owner,
        name="Morning",
        kind=Schedule.Kind.INSPECTION,
        template=_daily(),
        clusters=[],
        cron="0 7 * * *",
        tz="UTC",
        enabled=True,
        recipients=[],
        language="en",
    )
    run = services.run_scheduled(schedule.pk)
    assert run.actor == owner and run.schedule == schedule and list(run.clusters.all()) == [cluster]
    binding.delete()
    assert services.run_scheduled(schedule.pk) is None
    refused = AuditEvent.objects.get(action="inspection.run.refused")
    assert refused.actor_id == owner.pk and refused.result == AuditEvent.Result.DENIED
    assert Run.objects.count() == 1
