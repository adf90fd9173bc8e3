"""What beat starts for CI/CD (the app's ``ready`` imports it so workers know the tasks): each pipeline's schedule
(its django-celery-beat entry names ``cicd.run_scheduled``), the dispatcher pass that starts queued runs whose
project has a free slot (every 30 s; a run that ended with its worker frees its slot through the reaper), and the
retention pass (daily). Apart from tasks.py because they go through services, which queue tasks.py's tasks."""

from __future__ import annotations

from celery import shared_task

from apps.cicd import services


@shared_task(name="cicd.run_scheduled", acks_late=True)
def run_scheduled(pipeline_id: int) -> None:
    services.run_scheduled(pipeline_id)


@shared_task(name="cicd.dispatch_project", acks_late=True)
def dispatch_project(project_id: int) -> None:
    services.dispatch(project_id)


@shared_task(name="cicd.dispatch", acks_late=True)
def dispatch() -> None:
    services.dispatch_all()


@shared_task(name="cicd.prune", acks_late=True)
def prune() -> None:
    services.prune()
