"""The AI console in English and in Chinese, with the real parts: a project's developer creates a knowledge base,
uploads a document that a real Celery worker indexes (embedding model, Milvus Lite), asks the assistant a question
about it, and sees the answer of the local model (SmolLM2 on llama-cpp-python) streamed in with its citation linking
to the document. The answer's words are not asserted (a 135M model); its presence and its citation are."""

import re

import pytest
from playwright.sync_api import expect

from apps.ai.models import Document, Endpoint, KnowledgeBase
from tests.ai.knowledge.conftest import _documents_dir, team  # noqa: F401 - fixtures shared with the knowledge tests
from tests.helpers import sign_in_page, unique

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WORDS = {
    "en": {"assistant": "Assistant", "sources": "Sources"},
    "zh-hans": {"assistant": "智能助手", "sources": "来源"},
}
RUNBOOK = """Payments runbook.

The payments gateway settles card transactions every night at 02:30. When the settlement batch fails, rerun it with
the job pay-settle-rerun in the payments namespace and tell the treasury desk.
"""


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_create_a_knowledge_base_upload_a_document_ask_and_see_the_cited_answer(
    language,
    page,
    screenshot,
    live_server,
    request,
    milvus,
    llm,
    celery_worker_thread,
    tmp_path,
    settings,
):
    settings.KUBEMATE_AI_ANSWER_TOKENS = 40
    words = WORDS[language]
    Endpoint.objects.create(name=unique("local"), base_url=llm.base_url, default_model=llm.model)
    people = request.getfixturevalue("team")
    writer, project = people["writer"], people["project"]
    sign_in_page(page, writer)
    page.context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}])

    page.goto("/ai/knowledge/new/")
    name = unique("runbooks")
    page.locator("#id_name").fill(name)
    page.locator("#id_project").select_option(str(project.pk))
    page.get_by_test_id("save").click()
    kb = KnowledgeBase.objects.get(name=name)
    expect(page).to_have_url(re.compile(rf"/ai/knowledge/{kb.pk}/$"))

    document = tmp_path / "payments.txt"
    document.write_text(RUNBOOK)
    page.get_by_test_id("upload-form").locator("input[type=file]").set_input_files(str(document))
    page.get_by_test_id("upload").click()
    row = page.locator("[data-testid=document-row][data-name='payments.txt']")
    expect(row).to_have_attribute("data-status", "indexed", timeout=90_000)
    indexed = Document.objects.get(knowledge_base=kb)
    assert indexed.chunk_count >= 1
    screenshot(f"ai-knowledge-{language}")

    page.goto("/ai/assistant/")
    expect(page.locator("h2.page-title")).to_have_text(words["assistant"])
    page.locator(f"[data-testid=kb-choice] input[value='{kb.pk}']").check()
    page.locator("#id_question").fill("What do I do when the settlement batch fails?")
    page.get_by_test_id("ask-submit").click()
    answer = page.get_by_test_id("answer").last
    expect(answer.get_by_test_id("citations")).to_contain_text(words["sources"], timeout=60_000)
    expect(answer.get_by_test_id("answer-latency")).to_be_visible(timeout=60_000)  # saved: the stream has ended
    expect(answer.get_by_test_id("answer-text")).not_to_be_empty()
    citation = answer.locator(f"[data-testid=citation][data-document='{indexed.pk}'] a")
    expect(citation).to_have_text("payments.txt")
    expect(citation).to_have_attribute("href", f"/ai/knowledge/documents/{indexed.pk}/")
    screenshot(f"ai-assistant-{language}")
    citation.click()
    expect(page).to_have_url(re.compile(rf"/ai/knowledge/documents/{indexed.pk}/$"))
    screenshot(f"ai-document-{language}")

    # The other AI pages as this developer sees them: the search, the overview, GPUs and model servers.
    page.goto(f"/ai/knowledge/search/?q=settlement+batch&kb={kb.pk}")
    expect(page.locator("text=payments.txt").first).to_be_visible()
    screenshot(f"ai-search-{language}")
    page.goto("/ai/")
    expect(page.get_by_test_id("bases-card")).to_contain_text(name)
    screenshot(f"ai-home-{language}")
    page.goto("/ai/gpus/")
    expect(page.get_by_test_id("gpu-summary")).to_be_visible()
    screenshot(f"ai-gpus-{language}")
    page.goto("/ai/servers/")
    screenshot(f"ai-servers-{language}")
