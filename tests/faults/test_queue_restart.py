"""A Redis restart loses the queued message of a Pending job (issue 11, item 3): it is queued again, and run once.

A private redis-server without persistence is the task queue. A job is queued while no worker runs; Redis is
restarted (its queue and its unacknowledged messages are gone); the reaper's pass finds the Pending job whose
message the queue no longer holds and queues it again; a real worker then runs it, once.
"""

from contextlib import contextmanager

import pytest

from apps.core import broker
from apps.core.deferred import render as R
from apps.core.jobs import resend_lost_jobs, start_job
from apps.core.models import Job, JobLogLine
from apps.core.redis import get_redis
from kubemate.celery import app
from tests.faults.test_redis_down import PrivateRedis
from tests.faults.test_worker_death import start_worker, why_not
from tests.faults.worker_tasks import long_wait
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@contextmanager
def queue_on(settings, url: str):
    """This process's Celery app, locks and broker door on ``url`` for the block."""
    before = (app.conf.broker_url, settings.CELERY_BROKER_URL, settings.REDIS_URL)
    settings.CELERY_BROKER_URL = settings.REDIS_URL = app.conf.broker_url = url

    def fresh() -> None:
        app._pool = None  # the connection and producer pools hold connections to the previous broker
        app.amqp._producer_pool = None
        broker._broker.cache_clear()
        get_redis.cache_clear()

    fresh()
    try:
        yield
    finally:
        app.conf.broker_url, settings.CELERY_BROKER_URL, settings.REDIS_URL = before
        fresh()


@pytest.fixture
def private_queue(tmp_path, settings):
    server = PrivateRedis(tmp_path)
    server.start()
    with queue_on(settings, server.url):
        yield server
    if server.process.poll() is None:
        server.stop()


def test_a_job_whose_message_a_redis_restart_lost_is_queued_again_and_runs_once(private_queue, admin_user, settings):
    settings.KUBEMATE_JOB_RESEND_SECONDS = 0
    job = start_job(task=long_wait, title="Drain node-1", actor=admin_user, target="cluster/x/node/node-1", args=(0,))
    key = str(job.pk)
    assert broker.held({key}) == {key}
    assert resend_lost_jobs() == 0  # held: never doubled

    private_queue.stop()
    private_queue.start()  # no persistence: the queue comes back empty
    assert broker.held({key}) == set()
    assert Job.objects.get(pk=job.pk).status == Job.Status.PENDING

    assert resend_lost_jobs() == 1
    assert broker.held({key}) == {key}
    assert resend_lost_jobs() == 0
    warning = JobLogLine.objects.get(job=job)
    assert R(warning.message) == "The task queue lost this job's message (Redis restarted); Kubemate queued it again."

    worker = start_worker()
    try:
        ran = wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, timeout=60)
        assert ran, why_not(worker, "the job queued again never ran")
    finally:
        worker.kill()
        worker.wait(10)
    job.refresh_from_db()
    assert (job.status, job.progress) == (Job.Status.SUCCEEDED, 100)
    assert job.log_lines.filter(message="Evicting the last pods").count() == 1  # ran once
    assert broker.held({key}) == set()  # acknowledged


def test_a_pending_job_of_an_unknown_task_ends_failed_instead_of_waiting_for_ever(private_queue, admin_user, settings):
    settings.KUBEMATE_JOB_RESEND_SECONDS = 0
    job = Job.objects.create(kind="tests.no_such_task", title="Gone", actor=admin_user, args=[1])

    assert resend_lost_jobs() == 0
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "cannot be queued again" in R(job.message)
