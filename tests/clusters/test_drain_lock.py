"""A second drain of a node that is being drained says which job holds it, never the internal lock name."""

import pytest
from django.utils import timezone

from apps.clusters.actions.drain import DRAIN_KIND, drain_job, job_target
from apps.core.jobs import JobRecorder
from apps.core.locks import LockBusy, redis_lock
from apps.core.models import Job
from tests.factories import ClusterFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_second_drain_names_the_job_and_person_draining_the_node():
    cluster, first_person = ClusterFactory(), UserFactory(username="li.wei")
    started = timezone.now().replace(hour=6, minute=48)
    running = Job.objects.create(
        kind=DRAIN_KIND, title="Drain", actor=first_person, target=job_target(cluster, "node-000"),
        status=Job.Status.RUNNING, started_at=started,
    )  # fmt: skip
    second = Job.objects.create(kind=DRAIN_KIND, title="Drain", actor=UserFactory(), target=running.target)

    with redis_lock(f"drain:{cluster.pk}:node-000"), pytest.raises(LockBusy) as busy:
        drain_job(JobRecorder(second), cluster_id=cluster.pk, node="node-000")

    when = timezone.localtime(started).strftime("%Y-%m-%d %H:%M")
    assert str(busy.value) == (
        f"Node node-000 is already being drained by job {str(running.pk)[:8]} started by li.wei at {when}."
    )
    assert "drain:" not in str(busy.value)
