"""The assistant's pages: the conversations of the person, one conversation with its questions and answers, the
question form, and the answer streamed as the model writes it (``message_stream``, read by
static/kubemate/assistant.js; without scripts the page links to it).

Asking takes ``ai.ask`` somewhere; a conversation is its owner's alone (anyone else gets 404, as for a missing one).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.capabilities import AI_ASK
from apps.ai import access
from apps.ai.assistant import services
from apps.ai.assistant.forms import AskForm
from apps.ai.knowledge.services import document_url
from apps.ai.models import Conversation, Message
from apps.core.redis import ServiceUnavailable

CONVERSATIONS_SHOWN = 50


def _asker(request) -> None:
    if not access.anywhere(request.user, AI_ASK):
        raise Http404


def _own(request, pk: int) -> Conversation:
    _asker(request)
    return get_object_or_404(Conversation.objects.select_related("endpoint"), pk=pk, user=request.user)


def _page(request, conversation: Conversation | None, form: AskForm, status: int = 200):
    rows = []
    if conversation is not None:
        rows = list(conversation.messages.all())
        for row in rows:
            services.settle_abandoned(row)
            for c in row.citations or []:
                c["url"] = document_url(c["document"])
    context = {
        "conversation": conversation,
        "rows": rows,
        "form": form,
        "conversations": Conversation.objects.filter(user=request.user).order_by("-updated_at")[:CONVERSATIONS_SHOWN],
        "models": sorted({n for e in form.fields["endpoint"].queryset for n in services.model_names(e)}),
        "limits": services.limits(),
    }
    return render(request, "ai/assistant/assistant.html", context, status=status)


@login_required
@require_GET
def assistant(request):
    _asker(request)
    return _page(request, None, AskForm(user=request.user))


@login_required
@require_GET
def conversation(request, pk: int):
    found = _own(request, pk)
    return _page(request, found, AskForm(user=request.user, conversation=found))


def _ask(request, found: Conversation | None):
    form = AskForm(request.POST, user=request.user, conversation=found)
    if not form.is_valid():
        return _page(request, found, form, status=400)
    data = form.cleaned_data
    try:
        reply = services.ask(
            actor=request.user,
            question=data["question"],
            knowledge_base_ids=[kb.pk for kb in data["knowledge_bases"]],
            endpoint=data["endpoint"],
            model=data["model"],
            conversation=found,
            request=request,
        )
    except (services.AskRefused, ServiceUnavailable) as exc:
        form.add_error(None, str(exc))
        return _page(request, found, form, status=400)
    return redirect(f"{reply.conversation.get_absolute_url()}#answer-{reply.pk}")


@login_required
@require_POST
def assistant_ask(request):
    _asker(request)
    return _ask(request, None)


@login_required
@require_POST
def conversation_ask(request, pk: int):
    return _ask(request, _own(request, pk))


@login_required
@require_POST
def conversation_rename(request, pk: int):
    found = _own(request, pk)
    services.rename_conversation(actor=request.user, conversation=found, title=request.POST.get("title", ""))
    return redirect(found.get_absolute_url())


@login_required
@require_POST
def conversation_delete(request, pk: int):
    found = _own(request, pk)
    services.delete_conversation(actor=request.user, conversation=found, request=request)
    messages.success(request, _("The conversation was deleted."))
    return redirect("ai:assistant")


def _own_answer(request, pk: int) -> Message:
    _asker(request)
    return get_object_or_404(
        Message.objects.select_related("conversation__endpoint"),
        pk=pk,
        role=Message.Role.ASSISTANT,
        conversation__user=request.user,
    )


@login_required
@require_GET
def message_part(request, pk: int):
    row = services.settle_abandoned(_own_answer(request, pk))
    for c in row.citations or []:
        c["url"] = document_url(c["document"])
    return render(request, "ai/assistant/_answer.html", {"row": row})


@login_required
@require_GET
def message_stream(request, pk: int):
    row = services.settle_abandoned(_own_answer(request, pk))
    response = StreamingHttpResponse(services.answer(row), content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"  # a proxy in front passes each piece on at once
    return response
