"""Worker bootsteps that let one Celery worker process also run the beat schedule and the inventory sync.

Every Python process of the console costs about 90 MB (Django, the project, Celery, the Kubernetes client),
so a small installation runs web + one worker instead of web + worker + beat + sync
(bench/README.md has the measurements). Both steps are off unless the settings turn them on:

- ``KUBEMATE_WORKER_BEAT``: ``EmbeddedBeat`` runs celery beat's service with the database scheduler in a
  thread of the worker (celery's own ``--beat`` forks a process instead), closing its database connection
  when it stops.
- ``KUBEMATE_WORKER_SYNC``: ``EmbeddedInventorySync`` runs ``SyncProcess`` (the same code as
  ``manage.py inventory_sync``) in a thread, restarting it if it ever fails, and stops it with the worker.

Run exactly one worker with them: two beats would send every schedule twice, two syncs would write every
change twice. Both are registered in kubemate/celery.py.
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


class EmbeddedInventorySync(bootsteps.StartStopStep):
    """The inventory sync (list + watch of every cluster) as threads of this worker."""

    requires = {"celery.worker.components:Pool"}
    RESTART_SECONDS = 2

    def __init__(self, worker, **kwargs) -> None:
        super().__init__(worker, **kwargs)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def include_if(self, worker) -> bool:
        return settings.KUBEMATE_WORKER_SYNC

    def start(self, worker) -> None:
        self.stopping.clear()
        self.thread = threading.Thread(target=self.run, name="kubemate-inventory-sync", daemon=True)
        self.thread.start()
        logger.info("inventory sync runs inside this worker")

    def run(self) -> None:
        from apps.clusters.inventory.sync import SyncProcess

        while not self.stopping.is_set():
            try:
                SyncProcess().run_forever(self.stopping)
            except Exception:
                logger.exception("inventory sync failed; restarting")
                self.stopping.wait(self.RESTART_SECONDS)

    def stop(self, worker) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=15)
            self.thread = None

    def terminate(self, worker) -> None:
        self.stop(worker)
