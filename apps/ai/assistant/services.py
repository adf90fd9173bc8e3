"""The assistant's work: a question asked against knowledge bases, answered by a model from the retrieved passages,
streamed, cached, limited per person, kept as each person's conversations.

``ask`` takes the question (limits, retrieval, the cache) and stores the question and its answer's row: a cache
hit is the whole answer at once; otherwise the row waits for ``answer``, the generator the stream view sends out
piece by piece (the prompt bounded by ``prompt.py``), which saves the text, the latency and any failure when the
model is done. Retrieval goes through ``apps/ai/retrieval.py`` with ``ai.ask``: only the knowledge bases the person
may read are searched, whatever ids a request names. Every question writes an audit event (who asked which knowledge
bases of which project, through which model; never the question's text); deleting a conversation writes one too;
renaming one does not (it changes nothing but its owner's label).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.capabilities import AI_ASK
from apps.ai import access, embeddings, llm, milvus, retrieval
from apps.ai.assistant import answers, prompt
from apps.ai.models import Conversation, Endpoint, KnowledgeBase, Message
from apps.core import audit
from apps.core.deferred import N_, render
from apps.core.deferred import text as deferred_text

TOP_K = 5
TITLE_CHARS = 80


class AskRefused(Exception):
    """The question is not taken (a limit, an empty question, no model); the message is the sentence."""


@dataclass
class Limits:
    per_minute: int
    per_day: int


def limits() -> Limits:
    return Limits(
        per_minute=int(settings.KUBEMATE_AI_QUESTIONS_PER_MINUTE),
        per_day=int(settings.KUBEMATE_AI_QUESTIONS_PER_DAY),
    )


def max_tokens() -> int:
    return int(settings.KUBEMATE_AI_ANSWER_TOKENS)


def question_max() -> int:
    """The longest question taken, in characters (retrieval reads at most ``retrieval.QUESTION_MAX``)."""
    return min(int(settings.KUBEMATE_AI_QUESTION_MAX_CHARS), retrieval.QUESTION_MAX)


def askable_bases(user):
    """The knowledge bases ``user`` may ask against: their projects' (ai.ask) and the operations one."""
    return access.knowledge_bases(user, AI_ASK).order_by("-builtin", "name")


def askable_endpoints(user):
    return access.endpoints(user, AI_ASK).order_by("name")


def model_names(endpoint: Endpoint) -> list[str]:
    names = [m.get("name", "") for m in endpoint.served_models or [] if isinstance(m, dict)]
    if endpoint.default_model and endpoint.default_model not in names:
        names.insert(0, endpoint.default_model)
    return [n for n in names if n]


def _count(user) -> None:
    """Count the question against the person's limits; refuse it (uncounted) when one is passed."""
    allowed = limits()
    minute = answers.count(user.pk, "minute", 60)
    if minute is not None and minute > allowed.per_minute:
        answers.uncount(user.pk, "minute")
        raise AskRefused(
            _("You asked %(count)d questions in the last minute, the most allowed; wait a minute and ask again.")
            % {"count": allowed.per_minute}
        )
    day = answers.count(user.pk, "day", 24 * 3600)
    if day is not None and day > allowed.per_day:
        answers.uncount(user.pk, "minute")
        answers.uncount(user.pk, "day")
        raise AskRefused(
            _("You asked %(count)d questions today, the most allowed; ask your administrator if you need more.")
            % {"count": allowed.per_day}
        )


def _title(question: str) -> str:
    line = " ".join(question.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


def _citations(passages: list[retrieval.Passage]) -> list[dict]:
    return [
        {
            "n": n,
            "knowledge_base": p.knowledge_base_id,
            "knowledge_base_name": p.knowledge_base_name,
            "document": p.document_id,
            "name": p.document_name,
            "position": p.position,
            "score": p.score,
            "excerpt": p.text[: prompt.PASSAGE_CHARS],
        }
        for n, p in enumerate(passages, start=1)
    ]


def ask(
    *,
    actor,
    question: str,
    knowledge_base_ids,
    endpoint: Endpoint,
    model: str,
    conversation: Conversation | None = None,
    request=None,
) -> Message:
    """Take a question and answer it from the cache, or leave its answer row for ``answer``. Raises AskRefused
    before anything is stored when a limit is passed or nothing can be asked."""
    question = (question or "").strip()
    if not question:
        raise AskRefused(_("Write a question first."))
    if len(question) > question_max():
        raise AskRefused(_("A question may have at most %(count)d characters.") % {"count": question_max()})
    if not model:
        raise AskRefused(_("This model server lists no model yet: check it on its page first."))
    if conversation is not None and conversation.user_id != actor.pk:
        raise AskRefused(_("This conversation is not yours."))
    if not askable_endpoints(actor).filter(pk=endpoint.pk).exists():  # the form offers only these; check again
        raise AskRefused(_("You may not ask through this model server."))
    cache_up = answers.available()  # asked once: Redis away costs one connection attempt, not one a step
    if cache_up:
        _count(actor)
    started = time.monotonic()
    versions = dict(
        askable_bases(actor).filter(pk__in=[int(k) for k in knowledge_base_ids]).values_list("pk", "version")
    )
    cache_key = answers.key(endpoint_id=endpoint.pk, model=model, versions=versions, question=question)
    cached = answers.get(cache_key) if versions and cache_up else None
    citations, retrieval_ms, error = [], None, ""
    if cached is not None:
        citations = cached.get("citations") or []
    elif versions:
        try:
            found = retrieval.search(actor, question, list(versions), code=AI_ASK, top_k=TOP_K)
        except (milvus.MilvusError, embeddings.EmbeddingError) as exc:
            error = _stored(exc)
        else:
            citations, retrieval_ms = _citations(found.passages), found.milliseconds
    with transaction.atomic():
        if conversation is None:
            conversation = Conversation.objects.create(
                user=actor, title=_title(question), endpoint=endpoint, model=model
            )
        else:
            Conversation.objects.filter(pk=conversation.pk).update(
                endpoint=endpoint, model=model, updated_at=timezone.now()
            )
        conversation.knowledge_bases.set(list(versions))
        Message.objects.create(conversation=conversation, role=Message.Role.USER, text=question)
        reply = Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            model=model,
            citations=citations,
            retrieval_ms=retrieval_ms,
            cache_hit=True if cached is not None else (False if cache_up else None),
            text=cached["text"] if cached is not None else "",
            error=error,
        )
        if cached is not None or error:
            reply.latency_ms = round((time.monotonic() - started) * 1000)
            reply.save(update_fields=["latency_ms"])
        _audit_question(actor, conversation, endpoint, model, versions, cached is not None, request)
    if cached is None and not error and cache_up:
        answers.remember_key(reply.pk, cache_key)
    return reply


def _stored(exc) -> str:
    """The deferred form of a door's failure, for the row (read later in the reader's language)."""
    sentence = getattr(exc, "deferred", "") or ""
    if sentence:
        return sentence
    if isinstance(exc, milvus.MilvusError):
        return deferred_text(N_("Milvus, where the knowledge bases are searched, did not answer: %(error)s"), error=exc)
    if isinstance(exc, embeddings.EmbeddingError):
        return deferred_text(N_("The embedding model could not read the question: %(error)s"), error=exc)
    return deferred_text(N_("The model server did not answer: %(error)s"), error=exc)


def _audit_question(actor, conversation, endpoint, model, versions, hit, request) -> None:
    bases = list(KnowledgeBase.objects.filter(pk__in=list(versions)).select_related("project__cluster"))
    projects = sorted({kb.project.slug for kb in bases if kb.project})
    cluster = next((kb.project.cluster.name for kb in bases if kb.project), "")
    audit.record(
        actor=actor,
        action="ai.ask",
        cluster=cluster,
        kind="Conversation",
        name=str(conversation.pk),
        detail={
            "knowledge_bases": sorted(versions),
            "projects": projects,
            "endpoint": endpoint.name,
            "model": model,
            "cache_hit": hit,
        },
        request=request,
    )


def pending(message: Message) -> bool:
    """The answer row still waits for the model (or is being written)."""
    return message.role == Message.Role.ASSISTANT and not message.text and not message.error


def settle_abandoned(message: Message) -> Message:
    """An answer whose writing began longer ago than an answer may take (the process writing it died) is marked
    unfinished, so no page waits for it for ever."""
    limit = float(settings.KUBEMATE_AI_ANSWER_SECONDS) + 30
    if pending(message) and message.latency_ms == 0 and (timezone.now() - message.created_at).total_seconds() > limit:
        error = deferred_text(N_("The answer was not finished: the process writing it stopped. Ask again."))
        Message.objects.filter(pk=message.pk, text="", error="").update(error=error)
        message.error = error
    return message


def chat_messages(message: Message) -> list[dict]:
    """What the model reads for ``message`` (prompt.py bounds it): its question, the last turns before it that have
    text, and its passages."""
    earlier = list(
        Message.objects.filter(conversation_id=message.conversation_id, pk__lt=message.pk)
        .exclude(text="")
        .order_by("-pk")
        .values_list("role", "text")[: 2 * prompt.HISTORY_TURNS + 1]
    )
    question = earlier.pop(0)[1] if earlier and earlier[0][0] == Message.Role.USER else ""
    return prompt.build(question, earlier[::-1], message.citations or [])


def answer(message: Message):
    """The model's answer in pieces, saved on ``message`` when it ends (text, latency, the cache) or fails (the
    sentence, yielded too). A message already answered yields its text whole."""
    if not pending(message):
        yield message.text if message.text else render(message.error)
        return
    claimed = Message.objects.filter(pk=message.pk, text="", error="", latency_ms__isnull=True).update(latency_ms=0)
    if not claimed:  # another request streams it: wait for the row instead of asking the model twice
        yield _("This answer is being written in another window; reload the page in a moment.")
        return
    conversation = message.conversation
    endpoint = conversation.endpoint
    started = message.created_at
    pieces: list[str] = []
    try:
        if endpoint is None:
            raise llm.LLMError(
                _("The model server of this conversation was removed."),
                deferred=deferred_text(N_("The model server of this conversation was removed.")),
            )
        for piece in llm.chat(endpoint, message.model, chat_messages(message), max_tokens=max_tokens()):
            pieces.append(piece)
            yield piece
    except llm.LLMError as exc:
        Message.objects.filter(pk=message.pk).update(
            text="".join(pieces), error=_stored(exc), latency_ms=_since(started)
        )
        yield ("\n\n" if pieces else "") + str(exc.sentence)
        return
    except GeneratorExit:  # the reader went away: keep what came, say so
        Message.objects.filter(pk=message.pk).update(
            text="".join(pieces),
            error=deferred_text(N_("The answer was cut off: the page was closed while it was written.")),
            latency_ms=_since(started),
        )
        raise
    text = "".join(pieces).strip()
    if not text:  # nothing to keep or cache: said as a failure, in each reader's language
        sentence = N_("The model gave an empty answer. Ask again, or choose another model.")
        Message.objects.filter(pk=message.pk).update(error=deferred_text(sentence), latency_ms=_since(started))
        yield _(sentence)
        return
    Message.objects.filter(pk=message.pk).update(text=text, latency_ms=_since(started))
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now())
    if message.cache_hit is False:
        cache_key = answers.key_of(message.pk)
        if cache_key:
            answers.put(cache_key, {"text": text, "citations": message.citations, "model": message.model})


def _since(started) -> int:
    return max(0, round((timezone.now() - started).total_seconds() * 1000))


def rename_conversation(*, actor, conversation: Conversation, title: str) -> None:
    title = " ".join((title or "").split())[:200]
    Conversation.objects.filter(pk=conversation.pk, user=actor).update(title=title)


def delete_conversation(*, actor, conversation: Conversation, request=None) -> None:
    with transaction.atomic():
        pk, count = conversation.pk, conversation.messages.count()
        conversation.delete()
        audit.record(
            actor=actor,
            action="ai.conversation.delete",
            kind="Conversation",
            name=str(pk),
            detail={"messages": count},
            request=request,
        )
