"""The Celery application: workers run long work, beat runs schedules from the database.

A worker can also host beat and the inventory sync as threads (KUBEMATE_WORKER_BEAT/SYNC:
apps/core/worker_steps.py, apps/clusters/inventory/worker_step.py).
"""

import os

from celery import Celery
from celery.signals import task_postrun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kubemate.settings")

app = Celery("kubemate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["apps.clusters.inventory", "apps.clusters.actions", "apps.ai.knowledge"])
# The automatic canary check task sits beside its body: it steps canaries, which start rollouts (releases.tasks).
app.autodiscover_tasks(["apps.releases"], related_name="analysis")


def _register_steps() -> None:
    from apps.clusters.inventory.worker_step import EmbeddedInventorySync
    from apps.core.heartbeat import WorkerHeartbeat
    from apps.core.worker_steps import EmbeddedBeat

    app.steps["worker"].add(WorkerHeartbeat)
    app.steps["worker"].add(EmbeddedBeat)  # only with KUBEMATE_WORKER_BEAT
    app.steps["worker"].add(EmbeddedInventorySync)  # only with KUBEMATE_WORKER_SYNC


_register_steps()


@task_postrun.connect(weak=False)
def _trim_after_task(**_kwargs) -> None:
    """A finished task's garbage goes back to the system (apps/core/memory.py), at most every 10 s."""
    from apps.core.memory import trim

    trim(10)
