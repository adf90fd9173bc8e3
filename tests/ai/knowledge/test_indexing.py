"""Upload, index, re-index and delete against the real parts: Milvus Lite (fixture ``milvus``), the embedding model,
PostgreSQL and Redis; the indexing job runs in this process as a worker runs it. Milvus ends up holding exactly the
chunks the documents say they have, each with its knowledge base, project, document and position; a removal that
Milvus would fail halfway is refused before anything changes; a dead worker leaves no document "indexing"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.capabilities import AI_VIEW
from apps.ai import milvus as milvus_door
from apps.ai import retrieval
from apps.ai.knowledge import chunking, extract, indexing, searching, services, storage
from apps.ai.models import Document, KnowledgeBase
from apps.core.jobs import reap_orphaned_jobs
from apps.core.models import AuditEvent, Job
from tests.ai.knowledge import documents
from tests.ai.knowledge.conftest import index, run_job, upload
from tests.helpers import free_port

pytestmark = pytest.mark.django_db


def _files(settings) -> list[str]:
    root = settings.KUBEMATE_AI_DOCUMENTS_DIR
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_three_documents_are_indexed_and_milvus_holds_their_chunks_with_source_and_position(milvus, team, kb):
    writer = team["writer"]
    version = kb.version
    payments = index(kb, writer, "payments.txt", documents.PAYMENTS.encode())
    certificates = index(kb, writer, "certificates.pdf", documents.pdf(documents.CERTIFICATES))
    bakery = index(kb, writer, "bakery.docx", documents.docx(documents.BAKERY))

    for document in (payments, certificates, bakery):
        job = Job.objects.get(pk=document.job_id)
        assert (job.status, job.progress) == (Job.Status.SUCCEEDED, 100)
        assert document.status == Document.Status.INDEXED and document.error == ""
        assert document.chunk_count >= 1 and len(document.positions) == document.chunk_count
        assert milvus_door.count(document=document.pk) == document.chunk_count
    assert payments.chunk_count > 1, "the chunk size of 300 cuts the runbook"
    assert milvus_door.count(knowledge_base=kb.pk) == sum(d.chunk_count for d in (payments, certificates, bakery))
    kb.refresh_from_db()
    assert kb.version == version + 3
    # Each stored chunk is the text at its position in the extracted document, with its project.
    text = extract.extract("payments.txt", documents.PAYMENTS.encode()).text
    vector = [0.0] * 383 + [1.0]
    rows = milvus_door.search(vector, knowledge_bases=[kb.pk], top_k=20, documents=[payments.pk])
    assert sorted(r.position for r in rows) == list(range(payments.chunk_count))
    for row in rows:
        start, end, page = payments.positions[row.position]
        assert (row.text, row.project, row.knowledge_base, page) == (text[start:end], kb.project_id, kb.pk, None)
    # The top chunk of a question answered in one document comes from that document, with its page for a PDF.
    restart = retrieval.retrieve(writer, "Why does the payments service keep restarting?", [kb.pk], code=AI_VIEW)
    assert restart[0].document_id == payments.pk and restart[0].document_name == "payments.txt"
    found = searching.search(writer, "When are the ingress certificates renewed?", [kb.pk], top_k=3)
    assert found.hits[0].passage.document_id == certificates.pk
    assert found.hits[0].page == 2 and found.hits[0].url == services.document_url(certificates)
    assert found.hits[0].passage.score > found.hits[-1].passage.score
    only_bakery = searching.search(writer, "payments restart", [kb.pk], top_k=5, documents=[bakery.pk])
    assert {h.passage.document_id for h in only_bakery.hits} == {bakery.pk}


def test_another_projects_people_retrieve_nothing_whatever_ids_they_name(milvus, team, kb):
    index(kb, team["writer"], "payments.txt", documents.PAYMENTS.encode())
    question = "Why does the payments service keep restarting?"

    assert retrieval.retrieve(team["neighbour"], question, [kb.pk], code=AI_VIEW) == []
    assert searching.search(team["neighbour"], question, [kb.pk], top_k=5).hits == []
    assert searching.search(team["stranger"], question, [kb.pk], top_k=5).hits == []
    assert searching.search(team["reader"], question, [kb.pk], top_k=5).hits[0].passage.document_name == "payments.txt"


def test_reindexing_with_a_new_chunk_size_replaces_the_chunks(milvus, team, kb):
    document = index(kb, team["writer"], "payments.txt", documents.PAYMENTS.encode())
    before = document.chunk_count
    services.change_knowledge_base(actor=team["writer"], kb=kb, values={"chunk_size": 120, "chunk_overlap": 20})

    services.reindex_document(actor=team["writer"], document=document)
    job = run_job(document)

    assert job.status == Job.Status.SUCCEEDED
    assert document.chunk_count > before
    assert milvus_door.count(document=document.pk) == document.chunk_count
    assert max(end - start for start, end, _page in document.positions) <= 120
    assert AuditEvent.objects.filter(action="ai.document.reindexed", object_name="payments.txt").count() == 1


def test_a_document_being_indexed_is_not_queued_twice_and_a_whole_base_is_reindexed(milvus, team, kb):
    first = upload(kb, team["writer"], "payments.txt", documents.PAYMENTS.encode())
    with pytest.raises(services.KnowledgeError, match="is being indexed now"):
        services.reindex_document(actor=team["writer"], document=first)
    run_job(first)
    second = index(kb, team["writer"], "bakery.docx", documents.docx(documents.BAKERY))

    assert services.reindex_knowledge_base(actor=team["writer"], kb=kb) == 2
    for document in (first, second):
        assert run_job(document).status == Job.Status.SUCCEEDED
        assert milvus_door.count(document=document.pk) == document.chunk_count


def test_deleting_a_document_removes_its_chunks_row_and_original_and_leaves_the_others(
    milvus, team, kb, settings, django_capture_on_commit_callbacks
):
    payments = index(kb, team["writer"], "payments.txt", documents.PAYMENTS.encode())
    bakery = index(kb, team["writer"], "bakery.docx", documents.docx(documents.BAKERY))
    assert _files(settings) == sorted([f"kb-{kb.pk}/{payments.sha256}", f"kb-{kb.pk}/{bakery.sha256}"])
    version = KnowledgeBase.objects.get(pk=kb.pk).version

    with django_capture_on_commit_callbacks(execute=True):
        services.delete_document(actor=team["writer"], document=payments)

    assert milvus_door.count(document=payments.pk) == 0
    assert milvus_door.count(document=bakery.pk) == bakery.chunk_count
    assert not Document.objects.filter(pk=payments.pk).exists()
    assert _files(settings) == [f"kb-{kb.pk}/{bakery.sha256}"]
    assert KnowledgeBase.objects.get(pk=kb.pk).version == version + 1
    event = AuditEvent.objects.get(action="ai.document.deleted")
    assert (event.object_kind, event.object_name, event.detail["knowledge_base"]) == ("Document", "payments.txt", kb.pk)


def test_deleting_a_knowledge_base_removes_every_chunk_row_and_original(
    milvus, team, kb, settings, django_capture_on_commit_callbacks
):
    index(kb, team["writer"], "payments.txt", documents.PAYMENTS.encode())
    index(kb, team["writer"], "certificates.pdf", documents.pdf(documents.CERTIFICATES))
    kb_id = kb.pk

    with django_capture_on_commit_callbacks(execute=True):
        services.delete_knowledge_base(actor=team["writer"], kb=kb)

    assert milvus_door.count(knowledge_base=kb_id) == 0
    assert not KnowledgeBase.objects.filter(pk=kb_id).exists()
    assert not Document.objects.filter(knowledge_base_id=kb_id).exists()
    assert _files(settings) == []
    assert AuditEvent.objects.get(action="ai.knowledge.deleted").detail["documents"] == 2


def test_milvus_down_refuses_a_removal_before_anything_changes_and_fails_an_indexing_with_a_sentence(
    milvus, team, kb, settings
):
    document = index(kb, team["writer"], "payments.txt", documents.PAYMENTS.encode())
    settings.KUBEMATE_MILVUS_URI = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(services.KnowledgeError) as refused:
        services.delete_document(actor=team["writer"], document=document)
    with pytest.raises(services.KnowledgeError):
        services.delete_knowledge_base(actor=team["writer"], kb=kb)
    late = upload(kb, team["writer"], "bakery.docx", documents.docx(documents.BAKERY))
    job = run_job(late)
    down = searching.search(team["writer"], "payments", [kb.pk], top_k=3)

    assert str(refused.value).startswith("Nothing was removed: Milvus at 127.0.0.1:")
    assert Document.objects.filter(pk=document.pk, status=Document.Status.INDEXED).exists()
    assert KnowledgeBase.objects.filter(pk=kb.pk).exists() and len(_files(settings)) == 2
    assert not AuditEvent.objects.filter(action__in=["ai.document.deleted", "ai.knowledge.deleted"]).exists()
    assert job.status == Job.Status.FAILED and "Milvus at 127.0.0.1:" in job.message
    assert late.status == Document.Status.FAILED and late.chunk_count == 0
    assert "did not answer" in indexing_error(late)
    assert down.hits == [] and "Milvus at 127.0.0.1:" in down.sentence
    settings.KUBEMATE_MILVUS_URI = milvus.uri
    assert milvus_door.count(document=document.pk) == document.chunk_count


def indexing_error(document: Document) -> str:
    from apps.core.deferred import render

    return render(document.error)


def test_a_dead_worker_leaves_the_document_failed_not_indexing(milvus, team, kb):
    document = upload(kb, team["writer"], "payments.txt", documents.PAYMENTS.encode())
    stale = timezone.now() - timedelta(minutes=10)
    Job.objects.filter(pk=document.job_id).update(
        status=Job.Status.RUNNING, started_at=stale, heartbeat_at=stale, progress=40
    )

    assert reap_orphaned_jobs() >= 1

    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert indexing_error(document) == (
        "The worker indexing this document stopped at 40% and did not come back: re-index it."
    )
    assert Job.objects.get(pk=document.job_id).status == Job.Status.FAILED


def test_a_document_follows_a_job_that_ended_without_it(team, kb):
    document = upload(kb, team["writer"], "payments.txt", documents.PAYMENTS.encode())
    Job.objects.filter(pk=document.job_id).update(status=Job.Status.CANCELLED, message="Cancelled by admin.")

    indexing.follow_job(document)

    assert (document.status, document.error) == (Document.Status.FAILED, "Cancelled by admin.")


def test_a_document_deleted_while_it_was_indexed_leaves_no_chunk(milvus, team, kb):
    document = upload(kb, team["writer"], "payments.txt", documents.PAYMENTS.encode())
    text = documents.PAYMENTS
    Document.objects.filter(pk=document.pk).delete()

    stored = indexing.store(document, text, chunking.split(text, size=300, overlap=60))

    assert stored is False
    assert milvus_door.count(document=document.pk) == 0


def test_a_deleted_documents_queued_job_runs_nothing(milvus, team, kb):
    document = upload(kb, team["writer"], "payments.txt", documents.PAYMENTS.encode())
    job_id = document.job_id

    services.delete_document(actor=team["writer"], document=document)

    job = Job.objects.get(pk=job_id)
    assert job.status == Job.Status.CANCELLED
    from apps.ai.knowledge import tasks

    tasks.index_document(str(job_id), document.pk)
    assert milvus_door.count(document=document.pk) == 0


def test_uploads_refused_leave_no_row_and_no_file(team, kb, settings):
    writer = team["writer"]
    upload(kb, writer, "payments.txt", documents.PAYMENTS.encode())
    settings.KUBEMATE_AI_DOCUMENT_MAX_MB = 1

    refusals = []
    for name, data in [
        ("payments.txt", b"other text"),
        ("copy.txt", documents.PAYMENTS.encode()),
        ("tool.exe", b"MZ"),
        ("big.txt", b"a" * (1024 * 1024 + 5)),
        ("fake.pdf", b"not a pdf"),
        ("../../etc/passwd", b"root"),
    ]:
        with pytest.raises((services.KnowledgeError, extract.ExtractError)) as refused:
            upload(kb, writer, name, data)
        refusals.append(str(refused.value))

    assert refusals == [
        "payments.txt is already in this knowledge base: delete it first, or rename the file.",
        "The same file is already in this knowledge base as payments.txt.",
        "tool.exe is not a format Kubemate reads: upload docx, htm, html, log, markdown, md, pdf, text, txt.",
        "big.txt is larger than 1 MiB: split it, or upload its text.",
        "fake.pdf is not a PDF file.",
        "passwd is not a format Kubemate reads: upload docx, htm, html, log, markdown, md, pdf, text, txt.",
    ]
    assert Document.objects.filter(knowledge_base=kb).count() == 1
    assert len(_files(settings)) == 1 and not any(storage._incoming().iterdir())


def test_a_sweep_removes_only_the_files_no_document_names(team, kb, settings):
    kept = upload(kb, team["writer"], "payments.txt", documents.PAYMENTS.encode())
    stray = settings.KUBEMATE_AI_DOCUMENTS_DIR / f"kb-{kb.pk}" / ("0" * 64)
    stray.write_bytes(b"left behind by a failed removal")

    assert storage.sweep(kb.pk) == 1
    assert _files(settings) == [kept.storage_key]


def test_redis_down_refuses_an_upload_and_keeps_no_row_and_no_file(team, kb, settings):
    from apps.core.redis import ServiceUnavailable, get_redis

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    get_redis.cache_clear()
    try:
        with pytest.raises(ServiceUnavailable):
            upload(kb, team["writer"], "payments.txt", documents.PAYMENTS.encode())
    finally:
        get_redis.cache_clear()

    assert not Document.objects.filter(knowledge_base=kb).exists()
    assert _files(settings) == []
    assert not AuditEvent.objects.filter(action="ai.document.uploaded").exists()
