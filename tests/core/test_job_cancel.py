"""Jobs can be cancelled from their page, and the jobs list filters and pages (issue: the operator's day, item 6)."""

import pytest
from celery import shared_task
from django.urls import reverse

from apps.clusters.actions import drain
from apps.core import jobs
from apps.core.deferred import render as R
from apps.core.models import AuditEvent, Job, JobLogLine
from tests.core.test_jobs import stepping_job
from tests.factories import AdminFactory, ClusterFactory, JobFactory, UserFactory
from tests.helpers import login

pytestmark = pytest.mark.django_db


@shared_task(base=jobs.JobTask, name="tests.cancelled_midway")
def cancelled_midway(job, steps: int) -> None:
    """Steps on; at step 2 its starter presses Cancel (as the page does, between two steps)."""
    for step in range(1, steps + 1):
        if step == 2:
            row = Job.objects.get(pk=job.id)
            jobs.cancel_job(actor=row.actor, job=row)
        job.progress(step * 100 // steps, f"Step {step} of {steps} done.")


def test_a_pending_job_cancelled_from_its_page_never_runs(client):
    user = UserFactory()
    job = JobFactory(actor=user, kind="tests.stepping_job")
    page = login(client, user).get(reverse("core:job_detail", args=[job.pk])).content.decode()
    assert 'data-testid="job-cancel"' in page

    response = client.post(reverse("core:job_cancel", args=[job.pk]), {"reason": "wrong node"}, follow=True)

    assert f"Cancelled by {user.username} before it started." in response.content.decode()
    job.refresh_from_db()
    assert (job.status, job.cancelled_by) == (Job.Status.CANCELLED, user)
    event = AuditEvent.objects.get(action="core.job.cancel")
    assert (event.actor_name, event.reason, event.detail["was"]) == (user.username, "wrong node", "pending")
    stepping_job(str(job.pk), steps=2)  # its queued message arrives: nothing runs
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED and not job.log_lines.filter(message__startswith="Step").exists()


def test_a_running_job_stops_at_its_next_step_in_its_own_words():
    user = UserFactory()
    job = JobFactory(actor=user, kind="tests.cancelled_midway")

    cancelled_midway(str(job.pk), steps=4)

    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED and job.progress == 50
    assert R(job.message) == f"Cancelled by {user.username} at 50%."
    lines = [(R(m), level) for m, level in job.log_lines.values_list("message", "level")]
    assert ("Step 3 of 4 done.", "info") not in lines
    assert (f"{user.username} asked to cancel the job.", JobLogLine.Level.WARNING) in lines
    assert job.finished_at is not None


def test_only_the_starter_or_an_administrator_may_cancel_and_a_finished_job_says_so(client):
    owner, other, admin = UserFactory(), UserFactory(), AdminFactory()
    job = JobFactory(actor=owner, status=Job.Status.RUNNING)
    assert login(client, other).post(reverse("core:job_cancel", args=[job.pk])).status_code == 404
    response = login(client, admin).post(reverse("core:job_cancel", args=[job.pk]), follow=True)
    assert "Cancelling: the job stops at its next step." in response.content.decode()
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING and job.cancelled_by == admin and job.cancel_requested_at
    assert 'disabled><i class="ti ti-player-stop me-1"></i>Cancelling' in response.content.decode()

    done = JobFactory(actor=owner, status=Job.Status.SUCCEEDED)
    page = login(client, owner).get(reverse("core:job_detail", args=[done.pk])).content.decode()
    assert 'data-testid="job-cancel"' not in page
    with pytest.raises(jobs.JobError, match="nothing to cancel"):
        jobs.cancel_job(actor=owner, job=done)


def test_a_cancelled_drain_leaves_the_node_cordoned_with_resume_and_undo_offered():
    cluster = ClusterFactory(name="prod")
    admin = AdminFactory()
    job = JobFactory(
        actor=admin, kind=drain.DRAIN_KIND, target=drain.job_target(cluster, "node-007"), status=Job.Status.CANCELLED
    )
    job.cancelled_by, job.progress = admin, 40
    assert drain.stopped_drain(cluster, "node-007") == job
    assert R(drain.drain_cancelled(job)).startswith(
        f"Cancelled by {admin.username} at 40%. Node node-007 stays cordoned"
    )


def test_the_jobs_list_filters_by_kind_state_user_and_target_and_pages(client):
    admin, li, wang = AdminFactory(), UserFactory(username="li.wei"), UserFactory(username="wang.fang")
    for n in range(60):
        JobFactory(
            actor=li, kind="releases.wait_rollout", status=Job.Status.SUCCEEDED, target=f"cluster/prod/release/app-{n}"
        )
    for n in range(45):
        JobFactory(
            actor=wang, kind="clusters.drain_node", status=Job.Status.FAILED, target=f"cluster/prod/node/node-{n:03}"
        )
    JobFactory(actor=wang, kind="clusters.drain_node", status=Job.Status.RUNNING, target="cluster/test/node/node-900")
    login(client, admin)
    url = reverse("core:job_list")

    def rows(**query):
        body = client.get(url, query).content.decode()
        return body.count('data-testid="job-row"'), body

    assert rows()[0] == 50
    assert rows(page=3)[0] == 6  # 106 jobs, 50 a page
    assert rows(kind="clusters.drain_node")[0] == 46
    assert rows(kind="clusters.drain_node", status="running")[0] == 1
    assert rows(user="li.w")[0] == 50 and rows(user="li.w", page=2)[0] == 10
    count, body = rows(target="node-90")
    assert count == 1 and "cluster/test/node/node-900" in body
    count, body = rows(status="cancelled")
    assert count == 0 and "No job matches these filters." in body
    assert "Drain a node" in rows()[1]  # kinds read as words in the filter
    # Pages keep the filters.
    assert "user=li.w&amp;page=2" in rows(user="li.w")[1]
    # Someone else sees only their own jobs, whatever the filter says.
    login(client, li)
    assert rows(user="wang")[0] == 0 and rows()[0] == 50 and rows(page=2)[0] == 10
