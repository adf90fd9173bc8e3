"""Worker bootstep that lets one Celery worker process also run the beat schedule.

Every Python process of the console costs about 90 MB (Django, the project, Celery, the Kubernetes client),
so a small installation runs web + one worker instead of web + worker + beat + sync
(bench/README.md has the measurements). The step is off unless the settings turn it on:
``KUBEMATE_WORKER_BEAT``: ``EmbeddedBeat`` runs celery beat's service with the database scheduler in a
thread of the worker (celery's own ``--beat`` forks a process instead), closing its database connection
when it stops. Its companion for the inventory sync is apps/clusters/inventory/worker_step.py.

Any number of workers may have it: the step beats only while its worker holds the beat lease in PostgreSQL
(apps/core/leases.py), so one beat runs at a time and another worker takes over when it dies. Both steps are
registered in kubemate/celery.py.
"""

from __future__ import annotations

import logging
import threading

from celery import bootsteps
from django.conf import settings
from django.db import DatabaseError, connections

logger = logging.getLogger(__name__)


BEAT_LEASE = "beat"


class EmbeddedBeat(bootsteps.StartStopStep):
    """celery beat (django-celery-beat's database scheduler) as a thread of this worker, while this worker holds
    the beat lease (``leases.py``): any number of workers may have the step, one beats at a time, and another
    takes over within ``KUBEMATE_LEASE_SECONDS`` and a round when it dies."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker, **kwargs) -> None:
        super().__init__(worker, **kwargs)
        self.service = None
        self.thread: threading.Thread | None = None
        self.elector: threading.Thread | None = None
        self.stopping = threading.Event()
        self.holder = ""

    def include_if(self, worker) -> bool:
        return settings.KUBEMATE_WORKER_BEAT

    def start(self, worker) -> None:
        self.stopping.clear()
        self.elector = threading.Thread(target=self.elect, args=(worker.app,), name="BeatLease", daemon=True)
        self.elector.start()

    def elect(self, app) -> None:
        """Take the beat lease when it is free, beat while it is renewed, stop beating when it is lost."""
        from apps.core import leases

        self.holder = leases.identity("beat")
        tenure = None
        try:
            while not self.stopping.is_set():
                try:
                    if tenure is not None and not leases.renew(tenure):
                        logger.warning("beat lease lost; this worker stops beating")
                        tenure = None
                        self._stop_service()
                    if tenure is None:
                        tenure = leases.acquire(BEAT_LEASE, self.holder)
                        if tenure is not None:
                            self._start_service(app)
                            logger.info("beat runs inside this worker", extra={"holder": self.holder})
                except Exception:  # the database away: keep beating on the lease we had until it is lost
                    logger.exception("beat lease could not be checked")
                    connections.close_all()
                self.stopping.wait(leases.seconds() / 3)
        finally:
            self._stop_service()
            if tenure is not None:
                try:
                    leases.release(tenure)
                except DatabaseError:
                    logger.warning("beat lease not released; it expires by itself")
            connections.close_all()

    def _start_service(self, app) -> None:
        from celery.beat import Service

        # max_interval 1 s, as celery's own threaded beat: the thread notices a stop within a second.
        self.service = Service(app, max_interval=1, scheduler_cls=settings.CELERY_BEAT_SCHEDULER, remote_control=False)
        self.thread = threading.Thread(target=self.run, args=(app, self.service), name="Beat", daemon=True)
        self.thread.start()

    def run(self, app, service) -> None:
        app.set_current()
        try:
            service.start()
        finally:
            connections.close_all()  # the scheduler's database connection belongs to this thread

    def _stop_service(self) -> None:
        if self.service is not None:
            self.service.stop()
        if self.thread is not None:
            self.thread.join(timeout=15)
        self.service = self.thread = None

    def stop(self, worker) -> None:
        self.stopping.set()
        if self.elector is not None:
            self.elector.join(timeout=20)
            self.elector = None

    def terminate(self, worker) -> None:  # a warm or cold shutdown stops it the same way
        self.stop(worker)
