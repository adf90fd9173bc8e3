"""The assistant's pages without the model: who may open what (anonymous, no ai.ask, another person, the owner) and
what a conversation page costs in queries. Answers here are rows already written."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.ai.models import Conversation, Endpoint, Message
from tests.helpers import login, unique

GET_VIEWS = ("ai:conversation", "ai:message_part", "ai:message_stream")
POST_VIEWS = ("ai:conversation_ask", "ai:conversation_rename", "ai:conversation_delete")


@pytest.fixture
def talk(team, kb):
    """The reader's conversation: two questions answered, each citing two passages; and an endpoint nobody calls."""
    endpoint = Endpoint.objects.create(name=unique("away"), base_url="http://127.0.0.1:9/v1", default_model="m")
    conversation = Conversation.objects.create(user=team["reader"], title="Settlement", endpoint=endpoint, model="m")
    conversation.knowledge_bases.set([kb])
    answers = [add_turn(conversation, kb, n) for n in range(2)]
    return {"conversation": conversation, "answer": answers[-1], "endpoint": endpoint}


def add_turn(conversation, kb, n: int) -> Message:
    Message.objects.create(conversation=conversation, role=Message.Role.USER, text=f"Question {n}?")
    citations = [
        {"n": i, "knowledge_base": kb.pk, "knowledge_base_name": kb.name, "document": 1000 + i, "name": f"doc{i}.md"}
        | {"position": i, "score": 0.5, "excerpt": f"passage {i}"}
        for i in (1, 2)
    ]
    return Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        text=f"Answer {n} [1].",
        model="m",
        citations=citations,
        cache_hit=False,
        retrieval_ms=12,
        latency_ms=800,
    )


def urls(talk) -> list[tuple[str, str]]:
    pk = {"ai:message_part": talk["answer"].pk, "ai:message_stream": talk["answer"].pk}
    return [
        ("get", reverse("ai:assistant")),
        ("post", reverse("ai:assistant_ask")),
        *[("get", reverse(name, args=[pk.get(name, talk["conversation"].pk)])) for name in GET_VIEWS],
        *[("post", reverse(name, args=[talk["conversation"].pk])) for name in POST_VIEWS],
    ]


def test_anonymous_people_are_sent_to_sign_in_and_people_without_ai_ask_get_404(talk, team, client):
    for method, url in urls(talk):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
    login(client, team["stranger"])
    for method, url in urls(talk):
        assert getattr(client, method)(url).status_code == 404, url
    assert Conversation.objects.filter(pk=talk["conversation"].pk, title="Settlement").exists()


def test_another_persons_conversation_is_404_like_a_missing_one(talk, team, client):
    login(client, team["writer"])  # holds ai.ask in the same project
    for method, url in urls(talk)[2:]:
        assert getattr(client, method)(url, {"title": "mine"} if method == "post" else None).status_code == 404, url
    assert client.get(reverse("ai:conversation", args=[talk["conversation"].pk + 1000])).status_code == 404
    assert Conversation.objects.get(pk=talk["conversation"].pk).title == "Settlement"
    mine = client.get(reverse("ai:assistant")).content.decode()
    assert "Settlement" not in mine


def test_the_owner_reads_the_conversation_and_its_list_in_few_queries(
    talk, team, kb, client, django_assert_max_num_queries
):
    login(client, team["reader"])
    conversation = talk["conversation"]
    with django_assert_max_num_queries(20) as few:
        page = client.get(reverse("ai:conversation", args=[conversation.pk]))
    assert page.status_code == 200
    shown = page.content.decode()
    assert shown.count('data-testid="answer"') == 2 and shown.count('data-testid="citation"') == 4
    assert reverse("ai:document_detail", args=[1001]) in shown and 'data-testid="cache-miss"' in shown
    assert 'data-testid="conversation-link"' in shown and "Answer 1 [1]." in shown
    for n in range(2, 6):
        add_turn(conversation, kb, n)
        Conversation.objects.create(user=team["reader"], title=f"Other {n}")
    with django_assert_max_num_queries(len(few)):
        page = client.get(reverse("ai:conversation", args=[conversation.pk]))
    assert page.content.decode().count('data-testid="answer"') == 6
    with django_assert_max_num_queries(len(few)):
        home = client.get(reverse("ai:assistant"))
    assert home.status_code == 200 and home.content.decode().count('data-testid="conversation-link"') == 5


def test_an_answer_already_written_streams_whole_and_its_part_shows_the_saved_card(talk, team, client):
    login(client, team["reader"])
    answer = talk["answer"]
    stream = client.get(reverse("ai:message_stream", args=[answer.pk]))
    assert stream["X-Accel-Buffering"] == "no" and stream["Cache-Control"] == "no-store"
    assert b"".join(stream.streaming_content).decode() == "Answer 1 [1]."
    part = client.get(reverse("ai:message_part", args=[answer.pk])).content.decode()
    assert f'id="answer-{answer.pk}"' in part and "data-pending" not in part and 'data-testid="answer-latency"' in part
