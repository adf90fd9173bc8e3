"""What the knowledge base tests share: their own documents folder, a project with a writer (developer: ai.view,
ai.knowledge, ai.ask), a reader (viewer: ai.view, ai.ask), someone without any binding, and another project's
developer; a knowledge base of the project; and a way to run an indexing job in this process, as a worker does."""

from __future__ import annotations

import pytest

from apps.accounts.models import Project
from apps.ai.knowledge import services, tasks
from apps.ai.models import Document, KnowledgeBase
from apps.core.models import Job
from tests.factories import ClusterFactory, UserFactory
from tests.helpers import grant, unique


@pytest.fixture(autouse=True)
def _documents_dir(settings, tmp_path):
    settings.KUBEMATE_AI_DOCUMENTS_DIR = tmp_path / "ai-documents"


@pytest.fixture
def team(db):
    cluster = ClusterFactory(name=unique("bank"))
    project = Project.objects.create(cluster=cluster, slug=unique("pay"), name="Payments", namespaces=["payments"])
    other = Project.objects.create(cluster=cluster, slug=unique("loan"), name="Lending", namespaces=["lending"])
    writer, reader, stranger, neighbour = UserFactory(), UserFactory(), UserFactory(), UserFactory()
    grant(writer, "developer", project=project)
    grant(reader, "viewer", project=project)
    grant(neighbour, "developer", project=other)
    return {
        "project": project,
        "other": other,
        "writer": writer,
        "reader": reader,
        "stranger": stranger,
        "neighbour": neighbour,
    }


@pytest.fixture
def kb(team) -> KnowledgeBase:
    return services.create_knowledge_base(
        actor=team["writer"], project=team["project"], name="Runbooks", chunk_size=300, chunk_overlap=60
    )


def upload(kb: KnowledgeBase, actor, name: str, data: bytes) -> Document:
    return services.upload_document(actor=actor, kb=kb, name=name, chunks=[data])


def run_job(document: Document) -> Job:
    """Run the document's queued indexing job here, as a worker would; the job and the document, refreshed."""
    document.refresh_from_db()
    tasks.index_document(str(document.job_id), document.pk)
    document.refresh_from_db()
    return Job.objects.get(pk=document.job_id)


def index(kb: KnowledgeBase, actor, name: str, data: bytes) -> Document:
    document = upload(kb, actor, name, data)
    run_job(document)
    return document
