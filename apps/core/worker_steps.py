"""Worker bootstep that lets one Celery worker process also run the beat schedule.

Every Python process of the console costs about 90 MB (Django, the project, Celery, the Kubernetes client),
so a small installation runs web + one worker instead of web + worker + beat + sync
(bench/README.md has the measurements). The step is off unless the settings turn it on:
``KUBEMATE_WORKER_BEAT``: ``EmbeddedBeat`` runs celery beat's service with the database scheduler in a
thread of the worker (celery's own ``--beat`` forks a process instead), closing its database connection
when it stops. Its companion for the inventory sync is apps/clusters/inventory/worker_step.py.

Run exactly one worker with it: two beats would send every schedule twice. Both steps are registered in
kubemate/celery.py.
"""

from __future__ import annotations

import logging
import threading

from celery import bootsteps
from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)


class EmbeddedBeat(bootsteps.StartStopStep):
    """celery beat (django-celery-beat's database scheduler) as a thread of this worker."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker, **kwargs) -> None:
        super().__init__(worker, **kwargs)
        self.service = None
        self.thread: threading.Thread | None = None

    def include_if(self, worker) -> bool:
        return settings.KUBEMATE_WORKER_BEAT

    def start(self, worker) -> None:
        from celery.beat import Service

        # max_interval 1 s, as celery's own threaded beat: the thread notices a stop within a second.
        self.service = Service(
            worker.app, max_interval=1, scheduler_cls=settings.CELERY_BEAT_SCHEDULER, remote_control=False
        )
        self.thread = threading.Thread(target=self.run, args=(worker.app,), name="Beat", daemon=True)
        self.thread.start()
        logger.info("beat runs inside this worker")

    def run(self, app) -> None:
        app.set_current()
        try:
            self.service.start()
        finally:
            connections.close_all()  # the scheduler's database connection belongs to this thread

    def stop(self, worker) -> None:
        if self.service is not None:
            self.service.stop()
        if self.thread is not None:
            self.thread.join(timeout=15)
        self.service = self.thread = None

    def terminate(self, worker) -> None:  # a warm or cold shutdown stops it the same way
        self.stop(worker)
