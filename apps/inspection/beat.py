"""What beat starts for each inspection schedule (its django-celery-beat entry names ``inspection.run_scheduled``).
Apart from tasks.py because it goes through services, which queue tasks.py's tasks; the app's ``ready`` imports
it so workers know the task."""

from __future__ import annotations

from celery import shared_task

from apps.inspection import services


@shared_task(name="inspection.run_scheduled", acks_late=True)
def run_scheduled(schedule_id: int) -> None:
    services.run_scheduled(schedule_id)
