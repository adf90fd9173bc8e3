"""A Job's progress as a backup's bytes go out: shared by the etcd (runner.py) and database (database.py) bodies."""

from __future__ import annotations

from collections.abc import Callable

from apps.core.jobs import JobRecorder


def upload_progress(job: JobRecorder, start: int, end: int, total: int) -> Callable[[int], None]:
    """A callback for ``s3.upload`` that moves the job's progress from ``start`` to ``end`` as bytes go out."""
    state = {"last": -1}

    def report(sent: int) -> None:
        percent = start + int((end - start) * min(sent, total) / max(total, 1))
        if percent != state["last"]:
            state["last"] = percent
            job.progress(percent)

    return report
