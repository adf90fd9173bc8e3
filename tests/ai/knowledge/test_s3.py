"""Originals on an S3 target (the backups app's door, against the tests' versitygw): kept under the knowledge base's
folder by their SHA-256, read back for indexing and download, removed with their document; with the storage down a
removal is refused before anything changes, and a download says so."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.ai import milvus as milvus_door
from apps.ai.knowledge import services
from apps.ai.models import Document
from tests.ai.knowledge import documents
from tests.ai.knowledge.conftest import index
from tests.backups.rows import versitygw_target
from tests.helpers import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def s3_kb(team, s3_server, s3_bucket, admin_user):
    target = versitygw_target(admin_user, s3_server, s3_bucket)
    return services.create_knowledge_base(
        actor=team["writer"], project=team["project"], name="On S3", target=target, chunk_size=300, chunk_overlap=60
    )


def test_originals_live_on_the_target_are_indexed_downloaded_and_removed_from_there(
    client, milvus, team, s3_kb, s3_server, s3_bucket, settings, django_capture_on_commit_callbacks
):
    data = documents.pdf(documents.CERTIFICATES)
    document = index(s3_kb, team["writer"], "certificates.pdf", data)
    key = f"kubemate/test/kubemate-ai/kb-{s3_kb.pk}/{document.sha256}"

    assert (document.storage, document.storage_key, document.target_id) == ("s3", key, s3_kb.target_id)
    assert s3_server.keys(s3_bucket, "kubemate/test/kubemate-ai/") == [key]
    assert not any(p.is_file() for p in settings.KUBEMATE_AI_DOCUMENTS_DIR.rglob("*"))
    assert document.status == Document.Status.INDEXED
    assert milvus_door.count(document=document.pk) == document.chunk_count
    download = login(client, team["reader"]).get(reverse("ai:document_download", args=[document.pk]))
    assert download["Content-Disposition"] == 'attachment; filename="certificates.pdf"'
    assert b"".join(download.streaming_content) == data

    with django_capture_on_commit_callbacks(execute=True):
        services.delete_document(actor=team["writer"], document=document)

    assert s3_server.keys(s3_bucket, "kubemate/test/kubemate-ai/") == []
    assert milvus_door.count(document=document.pk) == 0


def test_with_the_storage_down_a_removal_is_refused_before_anything_changes(client, milvus, team, s3_kb, s3_server):
    document = index(s3_kb, team["writer"], "payments.txt", documents.PAYMENTS.encode())
    s3_server.stop()
    try:
        with pytest.raises(services.KnowledgeError) as refused:
            services.delete_document(actor=team["writer"], document=document)
        with pytest.raises(services.KnowledgeError):
            services.delete_knowledge_base(actor=team["writer"], kb=s3_kb)
        download = login(client, team["reader"]).get(reverse("ai:document_download", args=[document.pk]), follow=True)
        upload = client.post(reverse("ai:document_upload", args=[s3_kb.pk]))
    finally:
        s3_server.start()

    assert str(refused.value).startswith("Nothing was removed: The storage at http://127.0.0.1:")
    assert "cannot be reached" in str(refused.value)
    assert Document.objects.filter(pk=document.pk, status=Document.Status.INDEXED).exists()
    assert milvus_door.count(document=document.pk) == document.chunk_count
    assert download.status_code == 200 and "cannot be reached or stopped answering" in download.content.decode()
    assert upload.status_code == 404, "a reader uploads nothing"
