"""The search page against the real Milvus Lite and embedding model: results with their score, document link and
position; the document filter and top-k; another project's people find nothing; Milvus down is a sentence."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.ai.knowledge import documents
from tests.ai.knowledge.conftest import index
from tests.helpers import free_port, login

pytestmark = pytest.mark.django_db


@pytest.fixture
def indexed(milvus, team, kb):
    return {
        "payments": index(kb, team["writer"], "payments.txt", documents.PAYMENTS.encode()),
        "certificates": index(kb, team["writer"], "certificates.pdf", documents.pdf(documents.CERTIFICATES)),
        "bakery": index(kb, team["writer"], "bakery.docx", documents.docx(documents.BAKERY)),
    }


def _scores(page: str) -> list[float]:
    return [float(s) for s in re.findall(r'data-testid="hit-score">score ([0-9.]+)<', page)]


def test_results_show_score_document_link_and_position_best_first(client, team, kb, indexed):
    login(client, team["reader"])
    address = reverse("ai:knowledge_search")

    page = client.get(address, {"q": "When are the ingress certificates renewed?", "kb": kb.pk, "top_k": 3})
    every = client.get(address, {"q": "payments service restarts", "top_k": 2})
    filtered = client.get(address, {"q": "payments restarts", "kb": kb.pk, "document": [indexed["bakery"].pk]})
    partial = client.get(address, {"q": "bread", "kb": kb.pk}, HTTP_HX_REQUEST="true")

    shown = page.content.decode()
    certificates = reverse("ai:document_detail", args=[indexed["certificates"].pk])
    assert page.status_code == 200
    assert shown.count('data-testid="search-hit"') == 3
    assert f'href="{certificates}"' in shown.split('data-testid="search-hit"')[1], "the top hit is the certificates"
    scores = _scores(shown)
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] < scores[0] <= 1
    assert re.search(r"chunk \d+ · characters \d+–\d+ · page 2", shown)
    assert every.content.decode().count('data-testid="search-hit"') == 2
    assert f'data-document="{indexed["payments"].pk}"' in every.content.decode().split('data-testid="search-hit"')[1]
    assert set(re.findall(r'data-document="(\d+)"', filtered.content.decode())) == {str(indexed["bakery"].pk)}
    assert "<html" not in partial.content.decode() and "bakery.docx" in partial.content.decode()


def test_another_projects_people_cannot_name_this_knowledge_base_or_its_documents(client, team, kb, indexed):
    login(client, team["neighbour"])
    address = reverse("ai:knowledge_search")

    named = client.get(address, {"q": "payments service restarts", "kb": kb.pk})
    every = client.get(address, {"q": "payments service restarts"})
    by_document = client.get(address, {"q": "payments", "document": [indexed["payments"].pk]})
    stranger = login(client, team["stranger"]).get(address, {"q": "payments"})

    assert named.status_code == 200 and 'data-testid="search-hit"' not in named.content.decode()
    assert "Select a valid choice" in named.content.decode()
    assert 'data-testid="search-hit"' not in every.content.decode()
    assert "payments.txt" not in by_document.content.decode()
    assert stranger.status_code == 404


def test_milvus_down_is_a_sentence_on_the_page(client, team, kb, milvus, settings):
    settings.KUBEMATE_MILVUS_URI = f"http://127.0.0.1:{free_port()}"

    response = login(client, team["reader"]).get(reverse("ai:knowledge_search"), {"q": "payments", "kb": kb.pk})

    assert response.status_code == 200
    assert 'data-testid="search-sentence"' in response.content.decode()
    assert "Milvus at 127.0.0.1:" in response.content.decode() and "did not answer" in response.content.decode()
