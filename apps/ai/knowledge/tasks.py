"""Celery tasks of the knowledge bases: thin wrappers, ids in. The indexing body is ``indexing.run``; the operations
knowledge base's refresh is ``operations.refresh``."""

from __future__ import annotations

from celery import shared_task

from apps.ai.knowledge import indexing, operations
from apps.core.jobs import JobRecorder, JobTask
from apps.core.locks import redis_lock


class IndexTask(JobTask):
    abstract = True
    max_retries = 0  # a failed indexing says why on the document; a person re-indexes it
    when_orphaned = staticmethod(indexing.orphaned)
    when_cancelled = staticmethod(indexing.cancelled)


@shared_task(base=IndexTask, name="ai.index_document")
def index_document(job: JobRecorder, document_id: int) -> None:
    indexing.run(job, document_id)


@shared_task(name="ai.refresh_operations_kb", ignore_result=True)
def refresh_operations_kb() -> int:
    """Make the operations knowledge base match the inspection's advice (one refresh at a time); returns how many
    runbooks were added, changed or removed."""
    with redis_lock("ai-operations-kb", timeout=1800):
        outcome = operations.refresh()
    return outcome.added + outcome.changed + outcome.removed
