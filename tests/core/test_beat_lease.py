"""Beat runs once however many workers have KUBEMATE_WORKER_BEAT: the one holding the beat lease beats, another
takes over when it dies. Two real Celery worker processes on the test database and Redis; the seconds are printed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from apps.core.models import Lease
from tests.helpers import session_database_url, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
REPO = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 3


def start_worker(log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "kubemate.settings.test",
        "DATABASE_URL": session_database_url(),
        "KUBEMATE_TEST_REDIS_URL": settings.CELERY_BROKER_URL,
        "KUBEMATE_WORKER_BEAT": "true",
        "KUBEMATE_LEASE_SECONDS": str(LEASE_SECONDS),
        "KUBEMATE_LOG_LEVEL": "INFO",
        "PYTHONPATH": str(REPO),
    }
    command = [
        str(Path(sys.executable).with_name("celery")),
        *("-A", "kubemate", "worker", "--pool", "threads", "--concurrency", "1", "--loglevel", "INFO"),
        *("--without-mingle", "--without-gossip", "--queues", "beat-lease-test"),
    ]
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def beats(log: Path) -> int:
    """How many times this worker started beating (its log's "beat runs inside this worker" lines)."""
    count = 0
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                count += json.loads(line).get("message") == "beat runs inside this worker"
            except ValueError:
                continue
    return count


def test_two_workers_beat_once_and_the_second_beats_when_the_first_dies(tmp_path):
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    workers = [start_worker(log) for log in logs]
    try:
        assert wait_for(lambda: sum(beats(log) for log in logs) == 1, 60), "no worker started beating"
        time.sleep(2 * LEASE_SECONDS)  # several rounds: the other worker stays quiet while the lease is renewed
        assert [beats(log) for log in logs].count(1) == 1 and sum(beats(log) for log in logs) == 1
        leader = 0 if beats(logs[0]) else 1
        lease = Lease.objects.get(name="beat")
        assert f":{workers[leader].pid}:" in lease.holder

        workers[leader].send_signal(signal.SIGKILL)
        died = time.monotonic()
        workers[leader].wait(10)
        other = 1 - leader
        assert wait_for(lambda: beats(logs[other]) == 1, 30), "the surviving worker did not take the beat over"
        took = time.monotonic() - died
        lease = Lease.objects.get(name="beat")
        assert f":{workers[other].pid}:" in lease.holder and took < LEASE_SECONDS + LEASE_SECONDS / 3 + 5
        print(f"\nbeat taken over {took:.1f} s after its worker was killed (lease {LEASE_SECONDS} s)")
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                try:
                    worker.wait(20)
                except subprocess.TimeoutExpired:
                    worker.kill()
