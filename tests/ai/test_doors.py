"""The AI doors against the real parts: the embedding model (int8 ONNX all-MiniLM-L6-v2 from its PyPI packages),
Milvus Lite's server (fixture ``milvus``), and the local model server (fixture ``llm``, llama.cpp's server with
SmolLM2-135M-Instruct). Retrieval keeps each project's chunks to that project, whatever ids a request names.

Ollama is not built here (deploy/ai/README.md says why); its API is read by a small stand-in server
(tests/ai/standins.py) that answers Ollama's documented /api/tags and /api/chat (one JSON object per line) so the
parsing is proven."""

from __future__ import annotations

import math

import pytest
from django.utils import translation

from apps.accounts.capabilities import AI_ASK, AI_VIEW
from apps.accounts.models import Project
from apps.ai import embeddings, retrieval
from apps.ai import llm as llm_door
from apps.ai import milvus as milvus_door
from apps.ai.models import Document, Endpoint, KnowledgeBase
from apps.core import crypto
from tests.ai.standins import OllamaStandIn
from tests.factories import ClusterFactory, UserFactory
from tests.helpers import grant, unique

SENTENCES = [
    "The payments service restarts when its memory exceeds two gibibytes.",
    "Rotate the etcd client certificates every year before they expire.",
    "Bake the bread at two hundred degrees for forty minutes.",
]


def test_embeddings_are_unit_vectors_whose_nearest_neighbour_is_the_related_sentence():
    vectors = embeddings.embed(SENTENCES)
    assert len(vectors) == 3 and all(len(v) == embeddings.DIMENSION for v in vectors)
    for v in vectors:
        assert math.isclose(math.fsum(x * x for x in v), 1.0, rel_tol=1e-3)
    question = embeddings.embed_one("Why does the payments service keep restarting?")
    scores = [sum(a * b for a, b in zip(question, v, strict=True)) for v in vectors]
    assert scores.index(max(scores)) == 0
    assert scores[0] > scores[2] + 0.3
    # A batch gives the same vectors as one text at a time (padding does not leak into the mean).
    alone = embeddings.embed_one(SENTENCES[1])
    assert max(abs(a - b) for a, b in zip(alone, vectors[1], strict=True)) < 1e-4


def _rows(kb: int, project: int, first_document: int) -> list[milvus_door.ChunkRow]:
    vectors = embeddings.embed(SENTENCES)
    return [
        milvus_door.ChunkRow(kb, project, first_document + i, i, text, vector)
        for i, (text, vector) in enumerate(zip(SENTENCES, vectors, strict=True))
    ]


def test_milvus_stores_searches_filters_counts_and_deletes(milvus):
    kb = 900_001
    milvus_door.delete_knowledge_base(kb)
    assert milvus_door.insert(_rows(kb, 7, 500)) == 3
    assert milvus_door.count(knowledge_base=kb) == 3
    question = embeddings.embed_one("payments keeps restarting")
    hits = milvus_door.search(question, knowledge_bases=[kb], top_k=2)
    assert hits[0].document == 500 and len(hits) == 2
    assert hits[0].score > hits[1].score and hits[0].text == SENTENCES[0]
    assert milvus_door.search(question, knowledge_bases=[kb + 1], top_k=3) == []
    assert milvus_door.search(question, knowledge_bases=[], top_k=3) == []
    only = milvus_door.search(question, knowledge_bases=[kb], top_k=3, documents=[501, 502])
    assert {h.document for h in only} == {501, 502}
    milvus_door.delete_document(500)
    assert milvus_door.count(knowledge_base=kb) == 2
    milvus_door.delete_knowledge_base(kb)
    assert milvus_door.count(knowledge_base=kb) == 0
    assert milvus_door.status()["reachable"] is True


def test_milvus_down_is_a_sentence_naming_it(milvus, settings):
    from tests.plugins.served import free_port

    settings.KUBEMATE_MILVUS_URI = f"http://127.0.0.1:{free_port()}"
    milvus_door._forget()
    with pytest.raises(milvus_door.MilvusError) as caught:
        milvus_door.count()
    assert "Milvus at 127.0.0.1:" in str(caught.value.sentence)
    state = milvus_door.status()
    assert state["reachable"] is False and "did not answer" in str(state["error"])
    with translation.override("zh-hans"):
        assert "Milvus" in str(state["error"])


def test_the_local_model_lists_its_model_and_streams_an_answer(llm):
    endpoint = Endpoint(name="local", kind=Endpoint.Kind.OPENAI, base_url=llm.base_url)
    names = [m.name for m in llm_door.list_models(endpoint)]
    assert llm.model in names
    pieces = list(
        llm_door.chat(
            endpoint,
            llm.model,
            [{"role": "user", "content": "Say hello to the operator."}],
            max_tokens=24,
        )
    )
    assert len(pieces) > 1 and "".join(pieces).strip()


@pytest.mark.django_db
def test_a_stopped_model_server_is_a_sentence_and_recorded_on_the_endpoint():
    from tests.plugins.served import free_port

    endpoint = Endpoint.objects.create(name=unique("gone"), base_url=f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(llm_door.LLMError) as caught:
        llm_door.check(endpoint)
    assert "cannot be reached" in str(caught.value.sentence)
    endpoint.refresh_from_db()
    assert endpoint.checked_at and "cannot be reached" in endpoint.last_error
    with pytest.raises(llm_door.LLMError):
        list(llm_door.chat(endpoint, "m", [{"role": "user", "content": "hi"}]))


@pytest.mark.django_db
def test_ollama_models_and_streamed_lines_are_read_and_the_key_is_sent_but_stored_encrypted():
    ollama = OllamaStandIn()
    try:
        endpoint = Endpoint.objects.create(
            name=unique("ollama"),
            kind=Endpoint.Kind.OLLAMA,
            base_url=ollama.url,
            api_key_encrypted=crypto.encrypt("sk-never-in-clear"),
        )
        assert "sk-never-in-clear" not in endpoint.api_key_encrypted
        models = llm_door.check(endpoint)
        assert [(m.name, m.size, m.family) for m in models] == [("qwen2:0.5b", 352, "qwen2")]
        endpoint.refresh_from_db()
        assert endpoint.served_models[0]["name"] == "qwen2:0.5b" and endpoint.last_error == ""
        assert ollama.seen[0] == ("/api/tags", "Bearer sk-never-in-clear")
        text = "".join(llm_door.chat(endpoint, "qwen2:0.5b", [{"role": "user", "content": "hi"}], max_tokens=5))
        assert text == "Hello there"
        assert ollama.seen[1][0] == "/api/chat" and ollama.seen[1][1]["options"]["num_predict"] == 5
    finally:
        ollama.close()


@pytest.mark.django_db
def test_retrieval_reads_only_the_knowledge_bases_the_person_may_and_never_another_projects(milvus):
    cluster = ClusterFactory(name=unique("ai"))
    mine = Project.objects.create(cluster=cluster, slug=unique("pay"), name="Payments", namespaces=["payments"])
    theirs = Project.objects.create(cluster=cluster, slug=unique("loan"), name="Lending", namespaces=["lending"])
    kb_mine = KnowledgeBase.objects.create(project=mine, name="runbooks")
    kb_theirs = KnowledgeBase.objects.create(project=theirs, name="runbooks")
    docs = {}
    for kb in (kb_mine, kb_theirs):
        milvus_door.delete_knowledge_base(kb.pk)
        rows = _rows(kb.pk, kb.project_id, 0)
        for row, name in zip(rows, ("a.md", "b.md", "c.md"), strict=True):
            row.document = Document.objects.create(knowledge_base=kb, name=name).pk
        milvus_door.insert(rows)
        docs[kb.pk] = [row.document for row in rows]
    person = UserFactory()
    grant(person, "developer", project=mine)
    passages = retrieval.retrieve(person, "payments keeps restarting", [kb_mine.pk, kb_theirs.pk], code=AI_ASK)
    assert passages and {p.knowledge_base_id for p in passages} == {kb_mine.pk}
    assert passages[0].document_id == docs[kb_mine.pk][0] and passages[0].document_name == "a.md"
    assert retrieval.retrieve(person, "payments keeps restarting", [kb_theirs.pk], code=AI_VIEW) == []
    nobody = UserFactory()
    assert retrieval.retrieve(nobody, "payments keeps restarting", [kb_mine.pk], code=AI_ASK) == []
    for kb in (kb_mine, kb_theirs):
        milvus_door.delete_knowledge_base(kb.pk)
