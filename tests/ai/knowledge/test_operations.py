"""The built-in operations knowledge base from the inspection checks' advice, in English and Chinese, against the
real Milvus Lite and embedding model: built by ``manage.py ai_operations_kb``, left alone when nothing changed,
a changed advice re-indexed and a removed check's runbook removed; a question in either language finds it; everyone
who may ask reads it, nobody changes it through the pages."""

from __future__ import annotations

import dataclasses
from io import StringIO

import pytest
from django.core.management import call_command

from apps.accounts.capabilities import AI_ASK
from apps.ai import milvus as milvus_door
from apps.ai import retrieval
from apps.ai.knowledge import operations
from apps.ai.models import Document, KnowledgeBase
from apps.core.models import AuditEvent
from apps.inspection.catalogue import CATALOGUE

pytestmark = pytest.mark.django_db

# Embedding all the runbooks takes the model seconds (Chinese text is a word piece a character): the indexing tests
# use a few checks of the catalogue, the texts are made for every one.
FEW = [
    "cluster.nodes.not_ready",
    "cluster.nodes.disk_pressure",
    "hosts.disk.space",
    "hosts.cron.changed",
    "security.certificates.apiserver",
    "apps.oom_kills",
    "db.postgresql.replication_lag",
    "cluster.pods.image_pull",
]


@pytest.fixture
def few_checks(monkeypatch):
    kept = {check_id: CATALOGUE[check_id] for check_id in FEW}
    monkeypatch.setattr("apps.inspection.catalogue.CATALOGUE", kept)
    return kept


def test_every_check_has_a_runbook_in_english_and_chinese():
    books = operations.runbooks()
    assert [b.check_id for b in books] == sorted(CATALOGUE)
    for book in books:
        english, chinese = (text for _offset, text in book.sections)
        assert english.startswith("# ") and book.text == f"{english}\n\n{chinese}"
        assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese), book.check_id
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in english), book.check_id


def test_the_runbooks_are_built_once_refreshed_when_advice_changes_and_found_in_both_languages(
    milvus, team, monkeypatch, few_checks
):
    out = StringIO()
    call_command("ai_operations_kb", stdout=out)
    kb = KnowledgeBase.objects.get(builtin=True)
    documents = {d.name: d for d in kb.documents.all()}
    nodes = documents["Nodes are ready (cluster.nodes.not_ready)"]

    assert f"{len(few_checks)} added, 0 changed, 0 unchanged, 0 removed, 0 failed" in out.getvalue()
    assert (kb.project, kb.name) == (None, operations.NAME)
    assert len(documents) == len(few_checks)
    assert all(d.status == Document.Status.INDEXED and d.chunk_count >= 2 for d in documents.values())
    assert milvus_door.count(knowledge_base=kb.pk) == sum(d.chunk_count for d in documents.values())
    original = (operations.storage.root() / nodes.storage_key).read_text()
    assert original.startswith("# Nodes are ready") and "# 节点均已就绪" in original
    assert "cluster.nodes.not_ready" in original
    version = KnowledgeBase.objects.get(pk=kb.pk).version

    again = operations.refresh()
    assert (again.added, again.changed, again.unchanged, again.removed) == (0, 0, len(few_checks), 0)
    assert KnowledgeBase.objects.get(pk=kb.pk).version == version

    check = few_checks["cluster.nodes.not_ready"]
    monkeypatch.setitem(few_checks, check.id, dataclasses.replace(check, fix="Drain the node and call the vendor."))
    monkeypatch.delitem(few_checks, "hosts.cron.changed")
    changed = operations.refresh()
    assert (changed.added, changed.changed, changed.removed) == (0, 1, 1)
    assert KnowledgeBase.objects.get(pk=kb.pk).version == version + 1
    assert (
        "Drain the node and call the vendor."
        in (operations.storage.root() / Document.objects.get(pk=nodes.pk).storage_key).read_text()
    )
    assert not kb.documents.filter(name__contains="hosts.cron.changed").exists()
    assert AuditEvent.objects.filter(action="ai.operations.refreshed").count() == 2

    english = retrieval.retrieve(team["reader"], "A worker node is NotReady, what do I do?", [kb.pk], code=AI_ASK)
    # all-MiniLM-L6-v2 was trained on English: a Chinese question finds the Chinese runbook by the words they share
    # (here the API server and its certificate), not by meaning alone (README: the operations knowledge base).
    chinese = retrieval.retrieve(team["reader"], "API 服务器证书快过期了怎么办", [kb.pk], code=AI_ASK)
    assert english[0].document_name == "Nodes are ready (cluster.nodes.not_ready)"
    assert (
        chinese[0].document_name == "The API server's certificate is not near expiry (security.certificates.apiserver)"
    )
    assert "证书" in chinese[0].text
    assert retrieval.retrieve(team["stranger"], "node NotReady", [kb.pk], code=AI_ASK) == []
