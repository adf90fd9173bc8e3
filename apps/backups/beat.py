"""What beat starts for backups (the app's ``ready`` imports it so workers know the tasks): each etcd and database
plan's schedule (its django-celery-beat entry names ``backups.run_scheduled``; Velero runs its own schedules), and
the hourly count of what each storage target holds. Apart from tasks.py because they go through services, which
queue tasks.py's tasks."""

from __future__ import annotations

from celery import shared_task

from apps.backups import services


@shared_task(name="backups.run_scheduled", acks_late=True)
def run_scheduled(plan_id: int) -> None:
    services.run_scheduled(plan_id)


@shared_task(name="backups.refresh_usage", acks_late=True)
def refresh_usage() -> None:
    services.refresh_all_usage()
