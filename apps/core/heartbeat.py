"""Celery workers announce themselves in Redis so the dashboard can tell whether one is alive.

``WorkerHeartbeat`` is a worker bootstep (registered in kubemate/celery.py): it
writes ``kubemate:worker:<host>:<pid>`` with a short expiry every few seconds
while the worker runs, and removes it on a clean stop.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from celery import bootsteps
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from apps.core.redis import get_redis

logger = logging.getLogger(__name__)
KEY_PREFIX = "kubemate:worker:"
# This process's worker key once its heartbeat step started ("" outside a worker): jobs record it.
CURRENT_KEY = ""
INTERVAL_SECONDS = 10
TTL_SECONDS = 30


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
        from apps.core.models import Job  # this module is imported with the Celery app, before Django's apps

        interval = getattr(settings, "KUBEMATE_WORKER_HEARTBEAT_SECONDS", INTERVAL_SECONDS)
        while not self.stopped.is_set():
            try:
                get_redis().set(self.key, "alive", ex=TTL_SECONDS)
            except Exception:  # noqa: BLE001 - Redis down: the dashboard will show the worker as missing.
                logger.warning("worker heartbeat could not reach Redis")
            try:
                # The jobs this worker runs are alive as long as it is (a long wait inside a job included).
                Job.objects.filter(worker=self.key, status=Job.Status.RUNNING).update(heartbeat_at=timezone.now())
            except Exception:  # noqa: BLE001 - PostgreSQL down: the reaper allows for more than one missed beat.
                logger.warning("worker heartbeat could not reach the database")
            finally:
                close_old_connections()
            self.stopped.wait(interval)


def alive_workers() -> int:
    return sum(1 for _ in get_redis().scan_iter(match=f"{KEY_PREFIX}*", count=100))
