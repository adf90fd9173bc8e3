"""A job for the worker-death test: it reports 81 % and then waits, as a drain waits for evictions.

Loaded into the worker started by tests/faults/test_worker_death.py with celery's --include.
"""

import time

from celery import shared_task

from apps.core.jobs import JobTask


@shared_task(base=JobTask, name="tests.faults.long_wait")
def long_wait(job, seconds: int) -> None:
    job.progress(81, "Evicting the last pods")
    time.sleep(seconds)
