"""The knowledge base pages for anonymous people, people without a capability on the project (a stranger and
another project's developer), readers (viewer: ai.view and ai.ask) and writers (developer: ai.knowledge): what each
sees, what each may do, the buttons each gets; the list's query count; the progress partial that stops polling;
the original's download; uploads refused with a sentence. No page needs Milvus except search (test_search.py)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.ai.knowledge import operations, services
from apps.ai.models import Document, KnowledgeBase
from apps.core.models import AuditEvent, Job
from tests.ai.knowledge import documents
from tests.ai.knowledge.conftest import upload
from tests.helpers import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def document(team, kb) -> Document:
    return upload(kb, team["writer"], "payments.txt", documents.PAYMENTS.encode())


def _pages(kb, document) -> dict[str, tuple[str, str]]:
    """Every page: name -> (method, address)."""
    return {
        "list": ("get", reverse("ai:knowledge_list")),
        "new": ("get", reverse("ai:knowledge_new")),
        "search": ("get", reverse("ai:knowledge_search")),
        "detail": ("get", reverse("ai:knowledge_detail", args=[kb.pk])),
        "edit": ("get", reverse("ai:knowledge_edit", args=[kb.pk])),
        "progress": ("get", reverse("ai:knowledge_progress", args=[kb.pk])),
        "document": ("get", reverse("ai:document_detail", args=[document.pk])),
        "download": ("get", reverse("ai:document_download", args=[document.pk])),
        "delete": ("post", reverse("ai:knowledge_delete", args=[kb.pk])),
        "reindex": ("post", reverse("ai:knowledge_reindex", args=[kb.pk])),
        "upload": ("post", reverse("ai:document_upload", args=[kb.pk])),
        "document_reindex": ("post", reverse("ai:document_reindex", args=[document.pk])),
        "document_delete": ("post", reverse("ai:document_delete", args=[document.pk])),
    }


def _codes(client, pages) -> dict[str, int]:
    return {name: getattr(client, method)(address).status_code for name, (method, address) in pages.items()}


def test_anonymous_people_are_sent_to_sign_in_everywhere(client, kb, document):
    for method, address in _pages(kb, document).values():
        response = getattr(client, method)(address)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), address


def test_people_without_a_capability_on_the_project_get_404_and_see_nothing(client, team, kb, document):
    pages = _pages(kb, document)
    stranger = _codes(login(client, team["stranger"]), pages)
    neighbour = _codes(
        login(client, team["neighbour"]), {k: v for k, v in pages.items() if k not in ("list", "new", "search")}
    )
    listing = client.get(reverse("ai:knowledge_list"))
    new = client.get(reverse("ai:knowledge_new"))

    assert set(stranger.values()) == {404}
    assert set(neighbour.values()) == {404}
    assert listing.status_code == 200 and 'data-name="Runbooks"' not in listing.content.decode()
    assert new.status_code == 200 and team["project"].name not in new.content.decode()
    assert Document.objects.filter(pk=document.pk).exists() and KnowledgeBase.objects.filter(pk=kb.pk).exists()


def test_readers_read_but_change_nothing_and_get_no_buttons(client, team, kb, document):
    pages = _pages(kb, document)
    codes = _codes(login(client, team["reader"]), pages)
    detail = client.get(pages["detail"][1]).content.decode()
    listing = client.get(pages["list"][1]).content.decode()

    assert codes == {
        "list": 200,
        "new": 404,
        "search": 200,
        "detail": 200,
        "edit": 404,
        "progress": 200,
        "document": 200,
        "download": 200,
        "delete": 404,
        "reindex": 404,
        "upload": 404,
        "document_reindex": 404,
        "document_delete": 404,
    }
    assert 'data-name="Runbooks"' in listing and 'data-testid="knowledge-new"' not in listing
    assert 'data-name="payments.txt"' in detail
    for button in ("knowledge-edit", "knowledge-delete", "knowledge-reindex", "upload-form", "document-delete"):
        assert f'data-testid="{button}"' not in detail


def test_writers_create_change_and_delete_a_knowledge_base_with_one_audit_event_each(
    client, team, milvus, django_capture_on_commit_callbacks
):
    login(client, team["writer"])
    form = client.get(reverse("ai:knowledge_new")).content.decode()
    created = client.post(
        reverse("ai:knowledge_new"),
        {"name": " Payments  runbooks ", "project": team["project"].pk, "chunk_size": 500, "chunk_overlap": 50},
    )
    kb = KnowledgeBase.objects.get(name="Payments runbooks")
    elsewhere = client.post(
        reverse("ai:knowledge_new"),
        {"name": "Theirs", "project": team["other"].pk, "chunk_size": 500, "chunk_overlap": 50},
    )
    too_much = client.post(
        reverse("ai:knowledge_edit", args=[kb.pk]), {"name": kb.name, "chunk_size": 500, "chunk_overlap": 300}
    )
    changed = client.post(
        reverse("ai:knowledge_edit", args=[kb.pk]), {"name": "Pay books", "chunk_size": 400, "chunk_overlap": 40}
    )
    detail = client.get(reverse("ai:knowledge_detail", args=[kb.pk])).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        deleted = client.post(reverse("ai:knowledge_delete", args=[kb.pk]))

    assert team["project"].name in form and team["other"].name not in form
    assert created.status_code == 302 and created["Location"] == reverse("ai:knowledge_detail", args=[kb.pk])
    assert (kb.project, kb.chunk_size, kb.created_by) == (team["project"], 500, team["writer"])
    assert elsewhere.status_code == 200 and "Choose one of your projects" in elsewhere.content.decode()
    assert "The overlap is at most half the chunk size (250)." in too_much.content.decode()
    assert changed.status_code == 302
    for button in ("knowledge-edit", "knowledge-delete", "knowledge-reindex", "upload-form"):
        assert f'data-testid="{button}"' in detail
    assert deleted.status_code == 302 and not KnowledgeBase.objects.filter(pk=kb.pk).exists()
    actions = list(
        AuditEvent.objects.filter(object_kind="KnowledgeBase").order_by("seq").values_list("action", flat=True)
    )
    assert actions == ["ai.knowledge.created", "ai.knowledge.changed", "ai.knowledge.deleted"]
    assert AuditEvent.objects.get(action="ai.knowledge.changed").detail["changed"] == [
        "chunk_overlap",
        "chunk_size",
        "name",
    ]


def test_a_name_taken_in_the_project_is_a_sentence(client, team, kb):
    response = login(client, team["writer"]).post(
        reverse("ai:knowledge_new"),
        {"name": "Runbooks", "project": team["project"].pk, "chunk_size": 500, "chunk_overlap": 50},
    )
    assert "Project Payments already has a knowledge base named Runbooks." in response.content.decode()


def test_upload_through_the_page_queues_indexing_and_refusals_are_sentences(client, team, kb, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    login(client, team["writer"])
    address = reverse("ai:document_upload", args=[kb.pk])
    ok = client.post(
        address, {"document": SimpleUploadedFile("notes.md", b"# Notes\n\nRestart the pods.")}, follow=True
    )
    settings.KUBEMATE_AI_DOCUMENT_MAX_MB = 1
    big = client.post(address, {"document": SimpleUploadedFile("big.txt", b"a" * (1024 * 1024 + 1))}, follow=True)
    bomb = client.post(address, {"document": SimpleUploadedFile("x.exe", b"MZ")}, follow=True)
    empty = client.post(address, {}, follow=True)

    document = Document.objects.get(knowledge_base=kb, name="notes.md")
    assert ok.status_code == 200 and "notes.md is uploaded and being indexed." in ok.content.decode()
    assert document.status == Document.Status.INDEXING and document.job.status == Job.Status.PENDING
    assert document.uploaded_by == team["writer"] and document.content_type == "text/markdown"
    assert "big.txt is larger than 1 MiB" in big.content.decode()
    assert "x.exe is not a format Kubemate reads" in bomb.content.decode()
    assert "Choose a file to upload." in empty.content.decode()
    assert Document.objects.filter(knowledge_base=kb).count() == 1
    assert AuditEvent.objects.filter(action="ai.document.uploaded").count() == 1


def test_the_progress_partial_polls_while_a_document_is_indexed_and_stops_after(client, team, kb, document):
    login(client, team["reader"])
    address = reverse("ai:knowledge_progress", args=[kb.pk])
    Job.objects.filter(pk=document.job_id).update(status=Job.Status.RUNNING, progress=40, message="Embedded 3 of 8.")
    running = client.get(address, HTTP_HX_REQUEST="true")
    Job.objects.filter(pk=document.job_id).update(status=Job.Status.SUCCEEDED, progress=100)
    Document.objects.filter(pk=document.pk).update(status=Document.Status.INDEXED, chunk_count=2)
    done = client.get(address, HTTP_HX_REQUEST="true")

    assert running.status_code == 200
    assert 'hx-trigger="every 2s"' in running.content.decode() and "40% · Embedded 3 of 8." in running.content.decode()
    assert done.status_code == 286
    assert 'hx-trigger="every 2s"' not in done.content.decode() and 'data-status="indexed"' in done.content.decode()


def test_the_original_downloads_as_an_attachment_named_as_uploaded(client, team, kb, document):
    response = login(client, team["reader"]).get(reverse("ai:document_download", args=[document.pk]))

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="payments.txt"'
    assert response["Content-Type"] == "text/plain"
    assert b"".join(response.streaming_content) == documents.PAYMENTS.encode()


def test_a_missing_original_is_a_sentence_on_the_document_page(client, team, kb, document, settings):
    (settings.KUBEMATE_AI_DOCUMENTS_DIR / document.storage_key).unlink()

    response = login(client, team["reader"]).get(reverse("ai:document_download", args=[document.pk]), follow=True)

    assert response.status_code == 200
    assert "The original of payments.txt is missing from the console&#x27;s disk: upload it again." in (
        response.content.decode()
    )


def test_the_list_asks_the_database_a_bounded_number_of_times(client, team, django_assert_max_num_queries):
    for n in range(12):
        kb = services.create_knowledge_base(actor=team["writer"], project=team["project"], name=f"kb-{n}")
        Document.objects.create(knowledge_base=kb, name="a.txt", status=Document.Status.FAILED)
        Document.objects.create(knowledge_base=kb, name="b.txt", status=Document.Status.INDEXED, chunk_count=3)
    login(client, team["reader"])

    with django_assert_max_num_queries(8):
        response = client.get(reverse("ai:knowledge_list"))
    filtered = client.get(reverse("ai:knowledge_list") + "?q=kb-1", HTTP_HX_REQUEST="true")

    page = response.content.decode()
    assert page.count('data-testid="knowledge-row"') == 12
    assert page.count('data-testid="row-failed"') == 12 and page.count("<td>3</td>") == 12
    assert filtered.content.decode().count('data-testid="knowledge-row"') == 3  # kb-1, kb-10, kb-11
    assert "<html" not in filtered.content.decode()


def test_the_operations_knowledge_base_is_read_by_everyone_who_may_ask_and_changed_by_nobody_here(client, team):
    kb = operations.knowledge_base()
    doc = Document.objects.create(knowledge_base=kb, name="Nodes (cluster.nodes)", status=Document.Status.INDEXED)
    login(client, team["writer"])

    detail = client.get(reverse("ai:knowledge_detail", args=[kb.pk]))
    codes = [
        client.get(reverse("ai:knowledge_edit", args=[kb.pk])).status_code,
        client.post(reverse("ai:knowledge_delete", args=[kb.pk])).status_code,
        client.post(reverse("ai:document_upload", args=[kb.pk])).status_code,
        client.post(reverse("ai:document_delete", args=[doc.pk])).status_code,
    ]
    stranger = login(client, team["stranger"]).get(reverse("ai:knowledge_detail", args=[kb.pk]))

    assert detail.status_code == 200 and 'data-testid="knowledge-edit"' not in detail.content.decode()
    assert codes == [404, 404, 404, 404]
    assert stranger.status_code == 404


def test_the_pages_render_in_chinese(client, team, kb, document):
    login(client, team["writer"])
    client.cookies["kubemate_language"] = "zh-hans"

    pages = [
        client.get(reverse("ai:knowledge_list")),
        client.get(reverse("ai:knowledge_detail", args=[kb.pk])),
        client.get(reverse("ai:knowledge_edit", args=[kb.pk])),
        client.get(reverse("ai:document_detail", args=[document.pk])),
        client.get(reverse("ai:knowledge_search")),
    ]

    assert [p.status_code for p in pages] == [200] * 5
    assert all('lang="zh-hans"' in p.content.decode() for p in pages)
    assert "修改" in pages[1].content.decode() and "删除" in pages[1].content.decode()
