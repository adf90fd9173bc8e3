"""The assistant: three documents indexed, a question answered from the one that holds its answer, with citations,
cached, limited, kept to what the person may read; the model, Milvus or Redis away said in a sentence."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from apps.ai import retrieval
from apps.ai.assistant import answers, services
from apps.ai.models import Conversation, Endpoint, Message
from apps.core.deferred import render
from apps.core.models import AuditEvent, Job
from apps.core.redis import get_redis
from tests.ai.knowledge.conftest import index
from tests.ai.standins import OllamaStandIn
from tests.helpers import login, unique
from tests.plugins.served import free_port

PAYMENTS = b"""Payments runbook.

The payments gateway batch settles card transactions every night at 02:30. When the settlement batch fails, rerun
it with the job pay-settle-rerun in the payments namespace and tell the treasury desk."""
LENDING = b"""Lending runbook.

Loan applications are scored by the risk engine. When scores stop arriving, restart the risk-engine deployment and
check the model registry's disk."""
BRANCHES = b"""Branch network notes.

Branch printers are replaced every five years. The helpdesk orders toner through the facilities portal."""
QUESTION = "What do I do when the nightly card settlement batch fails?"


def ask(user, kb, endpoint, question=QUESTION, conversation=None) -> Message:
    return services.ask(
        actor=user,
        question=question,
        knowledge_base_ids=[kb.pk],
        endpoint=endpoint,
        model=endpoint.default_model,
        conversation=conversation,
    )


def finish(reply: Message) -> tuple[Message, str]:
    streamed = "".join(services.answer(reply))
    reply.refresh_from_db()
    return reply, streamed


@pytest.fixture
def three(milvus, team, kb):
    docs = [
        index(kb, team["writer"], "lending.md", LENDING),
        index(kb, team["writer"], "payments.txt", PAYMENTS),
        index(kb, team["writer"], "branches.md", BRANCHES),
    ]
    assert [Job.objects.get(pk=d.job_id).progress for d in docs] == [100, 100, 100]
    return docs


def test_a_question_is_answered_from_the_document_that_holds_it_cached_and_kept_from_another_project(
    three, team, kb, endpoint
):
    get_redis().flushdb()
    first = ask(team["reader"], kb, endpoint)
    assert first.cache_hit is False and first.text == ""
    assert first.citations[0]["document"] == three[1].pk and first.citations[0]["name"] == "payments.txt"
    assert first.retrieval_ms is not None
    first, streamed = finish(first)
    assert first.text and streamed.strip() and first.error == ""
    assert first.latency_ms > 0

    again = ask(team["reader"], kb, endpoint, question="  what do i do when the nightly card settlement batch FAILS ")
    assert again.cache_hit is True and again.text == first.text
    assert again.citations == first.citations
    assert again.latency_ms < first.latency_ms
    assert "".join(services.answer(again)) == first.text
    assert Conversation.objects.filter(user=team["reader"]).count() == 2

    neighbour = ask(team["neighbour"], kb, endpoint)
    assert neighbour.citations == [] and neighbour.cache_hit is not True
    assert retrieval.retrieve(team["neighbour"], QUESTION, [kb.pk], code="ai.ask") == []
    assert AuditEvent.objects.filter(action="ai.ask", actor_id=team["reader"].pk).count() == 2


def test_the_cache_key_follows_the_normalised_question_the_model_and_the_knowledge_base_version():
    base = {"endpoint_id": 1, "model": "m", "versions": {3: 1, 2: 4}}
    same = answers.key(**base, question="How do I restart Pay?")
    assert answers.key(**base, question="how do i  restart pay？") == same
    assert answers.key(**{**base, "versions": {2: 4, 3: 1}}, question="How do I restart Pay") == same
    assert answers.key(**{**base, "versions": {3: 2, 2: 4}}, question="How do I restart Pay?") != same
    assert answers.key(**{**base, "model": "other"}, question="How do I restart Pay?") != same
    assert answers.key(**{**base, "versions": {3: 1}}, question="How do I restart Pay?") != same


def test_a_changed_knowledge_base_misses_the_cache(three, team, kb, endpoint):
    get_redis().flushdb()
    finish(ask(team["reader"], kb, endpoint))
    index(kb, team["writer"], "more.txt", b"The settlement batch may also be rerun from the console's job page.")
    assert ask(team["reader"], kb, endpoint).cache_hit is False


def test_questions_over_the_limit_are_refused_before_anything_is_asked(team, kb, endpoint, settings):
    get_redis().flushdb()
    settings.KUBEMATE_AI_QUESTIONS_PER_MINUTE = 1
    settings.KUBEMATE_AI_QUESTIONS_PER_DAY = 2
    ask(team["reader"], kb, endpoint, question="first")
    with pytest.raises(services.AskRefused, match="in the last minute"):
        ask(team["reader"], kb, endpoint, question="second")
    assert Message.objects.filter(conversation__user=team["reader"]).count() == 2
    settings.KUBEMATE_AI_QUESTIONS_PER_MINUTE = 10
    ask(team["reader"], kb, endpoint, question="second")
    with pytest.raises(services.AskRefused, match="today"):
        ask(team["reader"], kb, endpoint, question="third")
    assert Message.objects.filter(conversation__user=team["reader"]).count() == 4
    assert int(get_redis().get(f"{answers.COUNTER}day:{team['reader'].pk}")) == 2  # the refused one given back
    assert answers.count(team["writer"].pk, "day", 60) == 1  # each person counts alone


def test_empty_long_and_foreign_questions_are_refused_uncounted(team, kb, endpoint, settings):
    get_redis().flushdb()
    settings.KUBEMATE_AI_QUESTION_MAX_CHARS = 20
    with pytest.raises(services.AskRefused, match="Write a question"):
        ask(team["reader"], kb, endpoint, question="  ")
    with pytest.raises(services.AskRefused, match="at most 20 characters"):
        ask(team["reader"], kb, endpoint, question="x" * 21)
    theirs = Endpoint.objects.create(
        name=unique("theirs"), project=team["other"], base_url=endpoint.base_url, default_model=endpoint.default_model
    )
    with pytest.raises(services.AskRefused, match="may not ask through"):
        ask(team["reader"], kb, theirs, question="short")
    assert not Message.objects.filter(conversation__user=team["reader"]).exists()
    assert get_redis().get(f"{answers.COUNTER}minute:{team['reader'].pk}") is None


def test_the_model_stopped_is_a_sentence_on_the_answer(team, kb, endpoint, llm):
    get_redis().flushdb()
    reply = ask(team["reader"], kb, endpoint, question="Is the model there?")
    llm.stop()
    try:
        reply, streamed = finish(reply)
    finally:
        llm.start()
    assert "cannot be reached" in streamed
    assert reply.error and reply.text == ""


def test_an_empty_answer_is_a_failure_in_the_readers_language_and_not_cached(team, kb, endpoint):
    get_redis().flushdb()
    silent = OllamaStandIn(words=())
    try:
        mute = Endpoint.objects.create(
            name=unique("mute"), kind=Endpoint.Kind.OLLAMA, base_url=silent.url, default_model="qwen2:0.5b"
        )
        reply, streamed = finish(ask(team["reader"], kb, mute, question="Say nothing at all?"))
    finally:
        silent.close()
    assert streamed == "The model gave an empty answer. Ask again, or choose another model."
    assert reply.text == "" and reply.latency_ms is not None and not services.pending(reply)
    with translation.override("zh-hans"):
        assert render(reply.error) == "模型给出了空回答。请重新提问，或选择其他模型。"
    cache_key = answers.key_of(reply.pk)
    assert reply.cache_hit is False and cache_key and answers.get(cache_key) is None


def test_milvus_down_is_a_sentence_and_no_500(team, kb, endpoint, client, settings):
    get_redis().flushdb()
    settings.KUBEMATE_MILVUS_URI = f"http://127.0.0.1:{free_port()}"
    settings.KUBEMATE_MILVUS_TIMEOUT = 2
    login(client, team["reader"])
    response = client.post(
        reverse("ai:assistant_ask"),
        {"question": QUESTION, "knowledge_bases": [kb.pk], "endpoint": endpoint.pk, "model": ""},
    )
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "Milvus" in page.content.decode()


def test_redis_down_answers_without_the_cache(three, team, kb, endpoint, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    get_redis.cache_clear()
    try:
        reply = ask(team["reader"], kb, endpoint)
        reply, _ = finish(reply)
    finally:
        get_redis.cache_clear()
    assert reply.cache_hit is None and reply.text and reply.citations


def test_the_pages_ask_stream_and_keep_each_conversation_to_its_owner(three, team, kb, endpoint, client):
    get_redis().flushdb()
    assert client.get(reverse("ai:assistant"))["Location"].startswith(reverse("login"))
    login(client, team["stranger"])
    assert client.get(reverse("ai:assistant")).status_code == 404
    login(client, team["reader"])
    page = client.get(reverse("ai:assistant"))
    assert page.status_code == 200 and f'value="{kb.pk}"' in page.content.decode()
    response = client.post(
        reverse("ai:assistant_ask"),
        {"question": QUESTION, "knowledge_bases": [kb.pk], "endpoint": endpoint.pk, "model": ""},
    )
    conversation = Conversation.objects.get(user=team["reader"])
    reply = conversation.messages.get(role=Message.Role.ASSISTANT)
    assert response["Location"] == f"{reverse('ai:conversation', args=[conversation.pk])}#answer-{reply.pk}"
    shown = client.get(reverse("ai:conversation", args=[conversation.pk])).content.decode()
    assert QUESTION in shown and reverse("ai:message_stream", args=[reply.pk]) in shown
    stream = client.get(reverse("ai:message_stream", args=[reply.pk]))
    assert stream["Content-Type"].startswith("text/plain") and b"".join(stream.streaming_content).strip()
    part = client.get(reverse("ai:message_part", args=[reply.pk])).content.decode()
    assert reverse("ai:document_detail", args=[three[1].pk]) in part and 'data-testid="cache-miss"' in part

    login(client, team["writer"])
    for name in ("ai:conversation", "ai:message_stream", "ai:message_part"):
        pk = conversation.pk if name == "ai:conversation" else reply.pk
        assert client.get(reverse(name, args=[pk])).status_code == 404
    assert client.post(reverse("ai:conversation_delete", args=[conversation.pk])).status_code == 404

    login(client, team["reader"])
    client.post(reverse("ai:conversation_rename", args=[conversation.pk]), {"title": "  Settlement  "})
    conversation.refresh_from_db()
    assert conversation.title == "Settlement"
    client.post(reverse("ai:conversation_delete", args=[conversation.pk]))
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert AuditEvent.objects.filter(action="ai.conversation.delete", actor_id=team["reader"].pk).exists()


def test_another_projects_knowledge_base_named_in_the_form_is_refused(three, team, kb, endpoint, client):
    login(client, team["neighbour"])
    response = client.post(
        reverse("ai:assistant_ask"),
        {"question": QUESTION, "knowledge_bases": [kb.pk], "endpoint": endpoint.pk, "model": ""},
    )
    assert response.status_code == 400
    assert not Conversation.objects.filter(user=team["neighbour"]).exists()
