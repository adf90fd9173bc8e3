"""Worker bootstep that lets one Celery worker process also run the inventory sync (``KUBEMATE_WORKER_SYNC``).

``EmbeddedInventorySync`` runs ``SyncProcess`` (the same code as ``manage.py inventory_sync``) in a thread,
restarting it if it ever fails, and stops it with the worker. Run exactly one worker with it: two syncs would
write every change twice. It is registered in kubemate/celery.py beside core's ``EmbeddedBeat``.
"""

from __future__ import annotations

import logging
import threading

from celery import bootsteps
from django.conf import settings

logger = logging.getLogger(__name__)


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
        # Imported here, not at the top: kubemate/celery.py loads this module before Django's apps are ready.
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
