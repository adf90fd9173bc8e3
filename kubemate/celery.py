"""The Celery application: workers run long work, beat runs schedules from the database."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kubemate.settings")

app = Celery("kubemate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["apps.clusters.inventory"])


def _register_steps() -> None:
    from apps.core.heartbeat import WorkerHeartbeat

    app.steps["worker"].add(WorkerHeartbeat)


_register_steps()
