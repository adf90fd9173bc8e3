"""A worker killed mid-job (issue 11, item 3): the job ends with a sentence within a bounded time.

A real Celery worker (its own process, as in production) runs a job that reports 81 % and then waits,
as a drain waits for evictions. While the worker lives, its heartbeat keeps the job Running past the
timeout; after SIGKILL the reaper ends the job as failed, saying where it stopped, within the timeout
(here 5 s; 90 s by default) plus one reaper pass. The seconds are printed.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from apps.core.jobs import reap_orphaned_jobs, start_job
from apps.core.locks import LockBusy, redis_lock
from apps.core.models import Job, JobLogLine
from apps.core.redis import get_redis
from tests.faults.worker_tasks import long_wait
from tests.helpers import session_database_url, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 5


@pytest.fixture
def worker():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "kubemate.settings.test",
        "DATABASE_URL": session_database_url(),
        "KUBEMATE_TEST_REDIS_URL": settings.CELERY_BROKER_URL,
        "KUBEMATE_WORKER_HEARTBEAT_SECONDS": "1",
        "PYTHONPATH": str(REPO),
    }
    command = [
        str(Path(sys.executable).with_name("celery")),
        *("-A", "kubemate", "worker", "--pool", "threads", "--concurrency", "1", "--loglevel", "WARNING"),
        *("--include", "tests.faults.worker_tasks", "--without-mingle", "--without-gossip"),
    ]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(10)


def test_a_job_whose_worker_is_killed_ends_failed_with_a_sentence(worker, admin_user, settings):
    settings.KUBEMATE_JOB_HEARTBEAT_TIMEOUT = TIMEOUT
    job = start_job(task=long_wait, title="Drain node-1", actor=admin_user, target="cluster/x/node/node-1", args=(600,))

    running = wait_for(lambda: Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, progress=81).exists(), 60)
    assert running, worker.stderr.read1().decode()[-3000:] if worker.poll() is not None else "the job never ran"
    time.sleep(TIMEOUT + 2)  # longer than the timeout: only the heartbeat keeps it alive
    assert reap_orphaned_jobs() == 0
    alive = Job.objects.get(pk=job.pk)
    assert alive.status == Job.Status.RUNNING and alive.worker.startswith("kubemate:worker:")

    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    killed_at = time.monotonic()
    ended = wait_for(lambda: reap_orphaned_jobs() or Job.objects.get(pk=job.pk).is_finished, timeout=TIMEOUT + 10)
    seconds = time.monotonic() - killed_at

    job.refresh_from_db()
    print(f"\nworker killed at 81 %: job ended {seconds:.1f} s later (timeout {TIMEOUT} s)")
    assert ended
    assert job.status == Job.Status.FAILED
    assert "stopped at 81%" in job.message
    assert JobLogLine.objects.filter(job_id=job.pk, message__contains="stopped at 81%").exists()
    assert seconds <= TIMEOUT + 3


HOLDER = """
import time, django
django.setup()
from apps.core.locks import redis_lock
with redis_lock("drain:1:node-1", timeout=600):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_lock_expires_with_its_killed_holder_and_not_before():
    keep = 2
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "kubemate.settings.test",
        "DATABASE_URL": session_database_url(),
        "KUBEMATE_TEST_REDIS_URL": settings.CELERY_BROKER_URL,
        "KUBEMATE_LOCK_KEEP_SECONDS": str(keep),
        "PYTHONPATH": str(REPO),
    }
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], cwd=REPO, env=env, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        redis = get_redis()
        time.sleep(keep * 3)  # three times the key's life: only the keeper keeps it
        assert redis.exists("kubemate:lock:drain:1:node-1")
        with pytest.raises(LockBusy), redis_lock("drain:1:node-1"):
            pass

        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        killed_at = time.monotonic()
        gone = wait_for(lambda: not redis.exists("kubemate:lock:drain:1:node-1"), timeout=keep + 5, interval=0.1)
        seconds = time.monotonic() - killed_at
    finally:
        if holder.poll() is None:
            holder.kill()

    print(f"\nlock holder killed: the lock was gone {seconds:.1f} s later (keep {keep} s)")
    assert gone
    assert seconds <= keep + 1
    with redis_lock("drain:1:node-1"):  # a new drain of the node is accepted
        pass
