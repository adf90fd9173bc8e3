"""Workers and the jobs they run say they are alive, so that a dead one is noticed.

``WorkerHeartbeat`` is a worker bootstep (registered in kubemate/celery.py): it writes
``kubemate:worker:<host>:<pid>:<id>`` with a short expiry every few seconds while the worker runs (the
dashboard counts these keys), and removes it on a clean stop.

``running(job_id)`` wraps each Job-backed task (core.jobs.JobTask): while the block runs, a pulse thread of
the process that runs it writes the job's ``heartbeat_at`` every ``KUBEMATE_WORKER_HEARTBEAT_SECONDS``, so a
job waiting a long time for Kubernetes stays alive, and a job whose process died (a killed worker, a pool
child killed for memory) stops beating and is ended by ``core.jobs.reap_orphaned_jobs``. The pulse lives in
the process that runs the job, not in the worker's main process, which may outlive it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from celery import bootsteps
from django.conf import settings
from django.db import connections
from django.utils import timezone

from apps.core.redis import get_redis

logger = logging.getLogger(__name__)
KEY_PREFIX = "kubemate:worker:"
# This process's worker key once its heartbeat step started ("" outside a worker): jobs record it.
CURRENT_KEY = ""
INTERVAL_SECONDS = 10
TTL_SECONDS = 30


def interval() -> float:
    return float(getattr(settings, "KUBEMATE_WORKER_HEARTBEAT_SECONDS", INTERVAL_SECONDS))


class WorkerHeartbeat(bootsteps.StartStopStep):
    def __init__(self, worker, **kwargs) -> None:
        super().__init__(worker, **kwargs)
        self.key = f"{KEY_PREFIX}{socket.gethostname()}:{os.getpid()}:{id(worker)}"
        self.stopped = threading.Event()
        global CURRENT_KEY
        CURRENT_KEY = self.key

    def start(self, worker) -> None:
        self.stopped.clear()
        threading.Thread(target=self.beat_forever, name="kubemate-heartbeat", daemon=True).start()

    def stop(self, worker) -> None:
        self.stopped.set()
        try:
            get_redis().delete(self.key)
        except Exception:  # noqa: BLE001 - Redis down: the key expires by itself.
            logger.warning("worker heartbeat could not be removed from Redis")

    def beat_forever(self) -> None:
        while not self.stopped.is_set():
            try:
                get_redis().set(self.key, "alive", ex=TTL_SECONDS)
            except Exception:  # noqa: BLE001 - Redis down: the dashboard will show the worker as missing.
                logger.warning("worker heartbeat could not reach Redis")
            self.stopped.wait(interval())


def worker_name() -> str:
    """What a job records as its worker: the worker's heartbeat key, and the process when it is a pool child."""
    here = f"{socket.gethostname()}:{os.getpid()}"
    if not CURRENT_KEY:
        return here
    return CURRENT_KEY if f":{os.getpid()}:" in CURRENT_KEY else f"{CURRENT_KEY} pid {os.getpid()}"


class _Pulse:
    """One thread per process that writes ``heartbeat_at`` of the jobs this process is running."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[str, int] = {}
        self.pid = 0

    def add(self, job_id: str) -> None:
        with self.lock:
            self.jobs[job_id] = self.jobs.get(job_id, 0) + 1
            if self.pid != os.getpid():  # first job in this process (or a forked child): start its own thread
                self.pid = os.getpid()
                threading.Thread(target=self.beat_forever, name="kubemate-job-pulse", daemon=True).start()

    def remove(self, job_id: str) -> None:
        with self.lock:
            count = self.jobs.pop(job_id, 0) - 1
            if count > 0:
                self.jobs[job_id] = count

    def beat_forever(self) -> None:
        from apps.core.models import Job  # this module is imported with the Celery app, before Django's apps

        pid = os.getpid()
        while self.pid == pid:
            threading.Event().wait(interval())
            with self.lock:
                ids = list(self.jobs)
            if not ids:
                continue
            try:
                Job.objects.filter(pk__in=ids, status=Job.Status.RUNNING).update(heartbeat_at=timezone.now())
            except Exception:  # noqa: BLE001 - PostgreSQL down: the reaper allows for several missed beats.
                logger.warning("job heartbeat could not reach the database")
            with suppress(Exception):  # this thread's own connection: one beat every few seconds needs none kept
                connections.close_all()


_PULSE = _Pulse()


@contextmanager
def running(job_id) -> Iterator[None]:
    """Keep ``heartbeat_at`` of this job fresh while the block runs in this process."""
    _PULSE.add(str(job_id))
    try:
        yield
    finally:
        _PULSE.remove(str(job_id))


def alive_workers() -> int:
    return sum(1 for _ in get_redis().scan_iter(match=f"{KEY_PREFIX}*", count=100))
