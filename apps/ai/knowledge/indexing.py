"""The indexing job's body: one document read from its storage, extracted, cut into chunks, embedded and stored in
Milvus with its knowledge base, project, document and position; ``tasks.py`` wraps it.

The document follows its job: ``indexing`` while it runs, then ``indexed`` (with its chunk count, characters and
chunk positions) or ``failed`` with the sentence saying why, and its chunks removed from Milvus so a failed
document answers nothing. A worker that dies mid-way leaves the job to core's reaper, whose hook (``orphaned``)
marks the document failed too; ``follow_job`` does the same from the page for a job that ended some other way.

A document deleted while it was being indexed loses the chunks the job stored: the last step locks the row, and
when it is gone removes what it wrote. Two jobs of one document never run at once (a Redis lock per document).
Each change of what retrieval may return bumps the knowledge base's ``version``.
"""

from __future__ import annotations

import contextlib
import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.ai import embeddings, milvus
from apps.ai.knowledge import chunking, extract, storage
from apps.ai.models import Document, KnowledgeBase
from apps.core.deferred import N_, fit, sentence_of
from apps.core.deferred import text as D
from apps.core.jobs import JobCancelled, JobRecorder
from apps.core.locks import redis_lock
from apps.core.models import Job

logger = logging.getLogger(__name__)

EMBED_BATCH = 32  # chunks embedded between two progress reports (one text a model run: embeddings.BATCH)


def bump(kb_id: int) -> None:
    """Another version of what retrieval may return from ``kb_id`` (the assistant's cache keys change with it)."""
    KnowledgeBase.objects.filter(pk=kb_id).update(version=F("version") + 1, updated_at=timezone.now())


def run(job: JobRecorder, document_id: int) -> None:
    with redis_lock(f"ai-document:{int(document_id)}", timeout=3600):
        document = Document.objects.select_related("knowledge_base", "target").filter(pk=document_id).first()
        if document is None:
            job.log(D(N_("The document was deleted before it was indexed.")))
            return
        Document.objects.filter(pk=document.pk).update(status=Document.Status.INDEXING, error="", job_id=job.id)
        try:
            _index(job, document)
        except BaseException as exc:
            sentence = (
                D(N_("Indexing was cancelled; re-index the document to search it."))
                if isinstance(exc, JobCancelled)
                else sentence_of(exc)
            )
            _failed(document, sentence)
            raise


def _index(job: JobRecorder, document: Document) -> None:
    kb = document.knowledge_base
    job.progress(5, D(N_("Reading %(name)s."), name=document.name))
    data = storage.read(document)
    job.progress(10, D(N_("Extracting the text of %(name)s."), name=document.name))
    found = extract.extract(document.name, data)
    del data
    chunks = chunking.split(found.text, size=kb.chunk_size, overlap=kb.chunk_overlap, pages=found.pages)
    job.progress(
        15,
        D(
            N_("%(characters)s characters cut into %(chunks)s chunks; embedding them."),
            characters=len(found.text),
            chunks=len(chunks),
        ),
    )
    if store(document, found.text, chunks, job=job):
        job.progress(100, D(N_("%(name)s is indexed: %(count)s chunks."), name=document.name, count=len(chunks)))


def store(
    document: Document, text: str, chunks: list[chunking.Chunk], *, job: JobRecorder | None = None, bump_version=True
) -> bool:
    """Embed ``chunks`` of ``document`` (cut from ``text``), put them in Milvus in place of its earlier ones and mark
    the document indexed; False when the document was deleted meanwhile (its chunks are removed again). Without
    ``bump_version`` the caller bumps the knowledge base's version once for several documents."""
    kb = document.knowledge_base
    vectors: list[list[float]] = []
    for start in range(0, len(chunks), EMBED_BATCH):
        part = chunks[start : start + EMBED_BATCH]
        vectors.extend(embeddings.embed([c.text for c in part]))
        if job is not None:
            done = start + len(part)
            job.progress(
                15 + 70 * done // max(len(chunks), 1),
                D(N_("Embedded %(done)s of %(total)s chunks."), done=done, total=len(chunks)),
            )
    rows = [
        milvus.ChunkRow(
            knowledge_base=kb.pk,
            project=kb.project_id or 0,
            document=document.pk,
            position=chunk.ordinal,
            text=chunk.text,
            vector=vector,
        )
        for chunk, vector in zip(chunks, vectors, strict=True)
    ]
    if job is not None:
        job.progress(88, D(N_("Storing %(count)s chunks in Milvus."), count=len(rows)))
    milvus.delete_document(document.pk)  # the chunks of an earlier indexing
    milvus.insert(rows)
    milvus.flush()  # searched through the index from now on, not by brute force (bench/README.md, AI)
    with transaction.atomic():
        still = Document.objects.select_for_update().filter(pk=document.pk).first()
        if still is None:  # deleted meanwhile: what was just stored goes too
            milvus.delete_document(document.pk)
            if job is not None:
                job.log(D(N_("The document was deleted while it was indexed; its chunks were removed.")))
            return False
        Document.objects.filter(pk=document.pk).update(
            status=Document.Status.INDEXED,
            chunk_count=len(rows),
            characters=len(text),
            positions=[[c.start, c.end, c.page] for c in chunks],
            error="",
            indexed_at=timezone.now(),
        )
        if bump_version:
            bump(kb.pk)
    return True


def _failed(document: Document, sentence: str) -> None:
    """The document failed with ``sentence``; whatever chunks it had are removed (best effort: Milvus may be the
    reason it failed, and then a search cannot reach them either)."""
    with contextlib.suppress(milvus.MilvusError):
        milvus.delete_document(document.pk)
    with transaction.atomic():
        updated = Document.objects.filter(pk=document.pk).update(
            status=Document.Status.FAILED, chunk_count=0, positions=[], error=fit(sentence, 2000)
        )
        if updated:
            bump(document.knowledge_base_id)


def orphaned(job: Job) -> str:
    """The reaper's words for an indexing job whose worker died (JobTask.when_orphaned): the document fails."""
    sentence = D(
        N_("The worker indexing this document stopped at %(progress)s%% and did not come back: re-index it."),
        progress=job.progress,
    )
    document = Document.objects.filter(pk=(job.args or [None])[0]).first()
    if document is not None and document.status == Document.Status.INDEXING:
        _failed(document, sentence)
    return sentence


def cancelled(job: Job) -> str:
    who = job.cancelled_by.get_username() if job.cancelled_by else D(N_("the system"))
    return D(N_("Indexing was cancelled by %(user)s; re-index the document to search it."), user=who)


def follow_job(document: Document) -> Document:
    """A document still ``indexing`` whose job has ended (failed, cancelled, or ended by the reaper before the hook
    ran) is failed with its job's sentence; called by the pages that show it."""
    if document.status != Document.Status.INDEXING or document.job_id is None:
        return document
    job = Job.objects.filter(pk=document.job_id).first()  # fresh: a job row loaded with the document may be stale
    if job is not None and not job.is_finished:
        return document
    sentence = (job.message if job is not None else "") or D(N_("Indexing stopped: re-index the document."))
    if job is not None and job.status == Job.Status.SUCCEEDED:
        sentence = D(N_("Indexing stopped: re-index the document."))
    Document.objects.filter(pk=document.pk, status=Document.Status.INDEXING).update(
        status=Document.Status.FAILED, error=fit(sentence, 2000)
    )
    document.refresh_from_db()
    return document
