"""Every write of the knowledge base pages: knowledge bases created, changed and deleted; documents uploaded,
re-indexed and deleted. Each is one transaction with one ``ai.knowledge.*`` / ``ai.document.*`` audit event, as
the person; indexing is a Job (``tasks.index_document``) queued when the transaction commits.

Deleting touches three stores: Milvus (the chunks), the database (the rows) and the storage (the originals). It is
refused before anything changes when Milvus or the storage does not answer; the chunks are removed inside the
rows' transaction, last, so a Milvus failure rolls the rows back; the originals go once the rows are gone (a
storage that fails just then leaves a file nobody can reach, removed by the knowledge base's next ``sweep``).

For the assistant: ``readable`` (the knowledge bases a person may read) and ``document_url`` (a citation's link).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from apps.accounts.capabilities import AI_ASK, AI_KNOWLEDGE, AI_VIEW
from apps.accounts.models import Project
from apps.ai import access, milvus
from apps.ai.knowledge import chunking, extract, indexing, storage, tasks
from apps.ai.models import Document, KnowledgeBase
from apps.core import audit, jobs
from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D
from apps.core.models import AuditEvent, Job

logger = logging.getLogger(__name__)

CHANGED_FIELDS = ("name", "description", "target", "chunk_size", "chunk_overlap")
MAX_DOCUMENTS = 1_000  # per knowledge base: a re-index of all of them queues one job each


class KnowledgeError(Failure):
    """The change was refused; the sentence says why and what to do."""


# --- reading ------------------------------------------------------------------------------------------------------


def readable(user):
    """The knowledge bases ``user`` may read: ai.view or ai.ask on their project, and the operations one when either
    is held anywhere."""
    return access.knowledge_bases(user, AI_VIEW) | access.knowledge_bases(user, AI_ASK)


def readable_base(user, pk: int) -> KnowledgeBase:
    """A knowledge base ``user`` may read; 404 otherwise."""
    try:
        return access.knowledge_base(user, pk, AI_VIEW)
    except Http404:
        return access.knowledge_base(user, pk, AI_ASK)


def writable_base(user, pk: int) -> KnowledgeBase:
    """A knowledge base ``user`` may change (ai.knowledge on its project; the operations one is built, not edited:
    ai.admin re-builds it with ``manage.py ai_operations_kb``); 404 otherwise."""
    kb = access.knowledge_base(user, pk, AI_KNOWLEDGE)
    if kb.builtin:
        raise Http404
    return kb


def may_write(user, kb: KnowledgeBase) -> bool:
    return not kb.builtin and access.knowledge_bases(user, AI_KNOWLEDGE, builtin=False).filter(pk=kb.pk).exists()


def readable_document(user, pk: int) -> Document:
    document = Document.objects.select_related("knowledge_base__project__cluster", "target").filter(pk=pk).first()
    if document is None:
        raise Http404
    readable_base(user, document.knowledge_base_id)
    return document


def writable_document(user, pk: int) -> Document:
    document = Document.objects.select_related("knowledge_base__project__cluster", "target").filter(pk=pk).first()
    if document is None:
        raise Http404
    writable_base(user, document.knowledge_base_id)
    return document


def document_url(document: Document | int) -> str:
    """The page of a document (its original, its chunks), for citation links."""
    return reverse("ai:document_detail", args=[getattr(document, "pk", document)])


def writable_projects(user):
    """Where ``user`` may create knowledge bases."""
    return access.projects(user, AI_KNOWLEDGE)


# --- knowledge bases ----------------------------------------------------------------------------------------------


def _audit(actor, action: str, kb: KnowledgeBase, *, request=None, detail=None, error: str = "") -> None:
    audit.record(
        actor=actor,
        action=action,
        result=AuditEvent.Result.FAILURE if error else AuditEvent.Result.SUCCESS,
        cluster=kb.project.cluster.name if kb.project_id else "",
        kind="KnowledgeBase",
        name=kb.name,
        detail={
            "knowledge_base": kb.pk,
            "project": kb.project.slug if kb.project_id else "",
            **(detail or {}),
            **({"error": error} if error else {}),
        },
        request=request,
    )


def _check_chunking(size: int, overlap: int) -> None:
    if not chunking.SIZE_MIN <= size <= chunking.SIZE_MAX:
        raise KnowledgeError(
            D(
                N_("A chunk is between %(low)s and %(high)s characters."),
                low=chunking.SIZE_MIN,
                high=chunking.SIZE_MAX,
            )
        )
    if overlap > chunking.overlap_max(size):
        raise KnowledgeError(D(N_("The overlap is at most half the chunk size (%(limit)s)."), limit=size // 2))


def create_knowledge_base(
    *,
    actor,
    project: Project,
    name: str,
    description: str = "",
    target=None,
    chunk_size: int = 800,
    chunk_overlap: int = 120,
    request=None,
) -> KnowledgeBase:
    if not access.on_project(actor, AI_KNOWLEDGE, project):
        raise Http404
    _check_chunking(chunk_size, chunk_overlap)
    kb = KnowledgeBase(
        name=name,
        description=description,
        project=project,
        target=target,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        created_by=actor,
    )
    try:
        with transaction.atomic():
            kb.save()
            _audit(
                actor,
                "ai.knowledge.created",
                kb,
                request=request,
                detail={"target": target.name if target else "", "chunk_size": chunk_size, "overlap": chunk_overlap},
            )
    except IntegrityError:
        raise KnowledgeError(
            D(N_("Project %(project)s already has a knowledge base named %(name)s."), project=project.name, name=name)
        ) from None
    return kb


def change_knowledge_base(*, actor, kb: KnowledgeBase, values: dict, request=None) -> list[str]:
    """Change the name, description, storage target or chunking; returns the changed fields. A new target keeps
    the documents already stored where they are; new chunking applies to the documents indexed from now on."""
    if kb.builtin:
        raise Http404
    before = {field: getattr(kb, field) for field in CHANGED_FIELDS}
    for field in CHANGED_FIELDS:
        if field in values:
            setattr(kb, field, values[field])
    _check_chunking(kb.chunk_size, kb.chunk_overlap)
    changed = sorted(f for f in CHANGED_FIELDS if getattr(kb, f) != before[f])
    try:
        with transaction.atomic():
            kb.save()
            _audit(actor, "ai.knowledge.changed", kb, request=request, detail={"changed": changed})
    except IntegrityError:
        for field, value in before.items():
            setattr(kb, field, value)
        raise KnowledgeError(
            D(N_("This project already has a knowledge base named %(name)s."), name=values.get("name", ""))
        ) from None
    return changed


def delete_knowledge_base(*, actor, kb: KnowledgeBase, request=None) -> None:
    """Remove the knowledge base, its documents' rows, chunks and originals (see the module docstring)."""
    if kb.builtin:
        raise Http404
    documents = list(kb.documents.select_related("target"))
    stored = [storage.stored_of(d) for d in documents]
    _ready_to_remove(documents)
    with transaction.atomic():
        KnowledgeBase.objects.select_for_update().filter(pk=kb.pk).first()
        _audit(actor, "ai.knowledge.deleted", kb, request=request, detail={"documents": len(documents)})
        kb_id = kb.pk
        Document.objects.filter(knowledge_base_id=kb_id).delete()
        kb.delete()
        _remove_chunks(lambda: milvus.delete_knowledge_base(kb_id))
        transaction.on_commit(lambda: _remove_originals(stored))
    kb.pk = kb_id


def _ready_to_remove(documents: Iterable[Document]) -> None:
    """Refuse before anything changes when Milvus or the storage would fail the removal."""
    try:
        milvus.count(knowledge_base=0)
    except milvus.MilvusError as exc:
        raise KnowledgeError(
            D(N_("Nothing was removed: %(reason)s Try again when Milvus answers."), reason=str(exc.sentence))
        ) from None
    try:
        storage.check_reachable(documents)
    except storage.StorageFailure as exc:
        raise KnowledgeError(
            D(N_("Nothing was removed: %(reason)s Try again when the storage answers."), reason=exc.stored)
        ) from None


def _remove_chunks(remove) -> None:
    try:
        remove()
    except milvus.MilvusError as exc:  # raised inside the transaction: the rows stay as they were
        raise KnowledgeError(
            D(N_("Nothing was removed: %(reason)s Try again when Milvus answers."), reason=str(exc.sentence))
        ) from None


def _remove_originals(stored: list[storage.Stored]) -> None:
    for item in stored:
        storage.remove(item)


# --- documents ----------------------------------------------------------------------------------------------------


def _audit_document(actor, action: str, document: Document, *, request=None, detail=None) -> None:
    kb = document.knowledge_base
    audit.record(
        actor=actor,
        action=action,
        cluster=kb.project.cluster.name if kb.project_id else "",
        kind="Document",
        name=document.name[:200],
        detail={
            "knowledge_base": kb.pk,
            "knowledge_base_name": kb.name,
            "project": kb.project.slug if kb.project_id else "",
            "document": document.pk,
            "sha256": document.sha256,
            "size": document.size,
            "stored_on": document.storage,
            **(detail or {}),
        },
        request=request,
    )


def _start_indexing(actor, document: Document) -> Job:
    job = jobs.start_job(
        task=tasks.index_document,
        title=D(N_("Index %(name)s"), name=document.name),
        actor=actor,
        target=f"ai/knowledge/{document.knowledge_base_id}/document/{document.pk}",
        args=(document.pk,),
    )
    Document.objects.filter(pk=document.pk).update(status=Document.Status.INDEXING, job=job, error="")
    document.status, document.job, document.error = Document.Status.INDEXING, job, ""
    return job


def clean_name(name: str) -> str:
    """A file name as shown: its last path part, without control characters, at most 255 characters."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if len(name) > 255:
        stem, dot, ending = name.rpartition(".")
        name = (stem[: 250 - len(ending)] + dot + ending) if dot else name[:255]
    return name


def upload_document(*, actor, kb: KnowledgeBase, name: str, chunks: Iterable[bytes], request=None) -> Document:
    """Keep an uploaded file (bounded as it is written, checked as its format) and queue its indexing."""
    if kb.builtin:
        raise Http404
    name = clean_name(name)
    if not name:
        raise KnowledgeError(D(N_("The file has no name: give it one ending in its format, such as .pdf.")))
    if Document.objects.filter(knowledge_base=kb, name=name).exists():
        raise KnowledgeError(
            D(N_("%(name)s is already in this knowledge base: delete it first, or rename the file."), name=name)
        )
    if kb.documents.count() >= MAX_DOCUMENTS:
        raise KnowledgeError(
            D(N_("A knowledge base holds at most %(limit)s documents: make another one."), limit=MAX_DOCUMENTS)
        )
    spooled = storage.spool(chunks, name=name)
    try:
        extract.check_upload(name, spooled.size, spooled.head)
        twin = Document.objects.filter(knowledge_base=kb, sha256=spooled.sha256).first()
        if twin is not None:
            raise KnowledgeError(D(N_("The same file is already in this knowledge base as %(name)s."), name=twin.name))
    except BaseException:
        spooled.discard()
        raise
    size, sha = spooled.size, spooled.sha256
    stored = storage.keep(kb, spooled)
    try:
        with transaction.atomic():
            document = Document.objects.create(
                knowledge_base=kb,
                name=name,
                content_type=extract.content_type(name),
                size=size,
                sha256=sha,
                storage=stored.storage,
                storage_key=stored.key,
                target_id=stored.target_id,
                uploaded_by=actor,
            )
            _audit_document(actor, "ai.document.uploaded", document, request=request)
            _start_indexing(actor, document)
    except IntegrityError:
        storage.remove(stored)
        raise KnowledgeError(
            D(N_("%(name)s is already in this knowledge base: delete it first, or rename the file."), name=name)
        ) from None
    except BaseException:
        storage.remove(stored)  # no row names it: it would never be reached
        raise
    return document


def _busy(document: Document) -> bool:
    indexing.follow_job(document)
    return document.status == Document.Status.INDEXING


def reindex_document(*, actor, document: Document, request=None) -> Job:
    if document.knowledge_base.builtin:
        raise Http404
    if _busy(document):
        raise KnowledgeError(D(N_("%(name)s is being indexed now: wait until it has finished."), name=document.name))
    with transaction.atomic():
        _audit_document(actor, "ai.document.reindexed", document, request=request)
        return _start_indexing(actor, document)


def reindex_knowledge_base(*, actor, kb: KnowledgeBase, request=None) -> int:
    """Queue the indexing of every document not being indexed now; returns how many were queued."""
    if kb.builtin:
        raise Http404
    documents = [d for d in kb.documents.select_related("knowledge_base__project__cluster") if not _busy(d)]
    with transaction.atomic():
        _audit(actor, "ai.knowledge.reindexed", kb, request=request, detail={"documents": len(documents)})
        for document in documents:
            _start_indexing(actor, document)
    return len(documents)


def delete_document(*, actor, document: Document, request=None) -> None:
    """Remove the document's chunks, row and original (see the module docstring); a job indexing it meanwhile
    removes what it stored when it finds the row gone."""
    if document.knowledge_base.builtin:
        raise Http404
    stored = storage.stored_of(document)
    _ready_to_remove([document])
    with transaction.atomic():
        Document.objects.select_for_update().filter(pk=document.pk).first()
        _audit_document(actor, "ai.document.deleted", document, request=request)
        document_id = document.pk
        document.delete()
        indexing.bump(document.knowledge_base_id)
        if document.job_id:
            Job.objects.filter(pk=document.job_id, status=Job.Status.PENDING).update(
                status=Job.Status.CANCELLED, finished_at=timezone.now(), message=D(N_("The document was deleted."))
            )
        _remove_chunks(lambda: milvus.delete_document(document_id))
        transaction.on_commit(lambda: _remove_originals([stored]))
    document.pk = document_id
