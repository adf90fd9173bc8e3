"""A Job's progress as a backup's bytes go out: shared by the etcd (runner.py) and database (database.py) bodies.

s3transfer calls back from its own threads: the Job row is written at most every ``EVERY`` seconds (and when the
last byte went out), and a thread other than the task's closes the database connection it opened for that."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.db import connection

from apps.core.jobs import JobRecorder

EVERY = 0.5


def upload_progress(job: JobRecorder, start: int, end: int, total: int) -> Callable[[int], None]:
    """A callback for ``s3.upload`` that moves the job's progress from ``start`` to ``end`` as bytes go out."""
    state = {"last": -1, "at": 0.0}
    lock = threading.Lock()

    def report(sent: int) -> None:
        percent = start + int((end - start) * min(sent, total) / max(total, 1))
        now = time.monotonic()
        with lock:
            if percent == state["last"] or (now - state["at"] < EVERY and sent < total):
                return
            state["last"], state["at"] = percent, now
            try:
                job.progress(percent)
            finally:
                if threading.current_thread() is not threading.main_thread():
                    connection.close()

    return report
