"""The AI overview: the GPUs, model servers, knowledge bases and recent questions a person may see, each card
linking to its part. It reads the database only (the GPU summary reads the inventory and, cached, Prometheus)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q, Sum
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.accounts.capabilities import AI_ASK, AI_KNOWLEDGE, AI_SERVE, AI_VIEW
from apps.ai import access
from apps.ai.gpu import services as gpu_services
from apps.ai.models import Conversation, Document

RECENT = 5


@login_required
@require_GET
def home(request):
    user = request.user
    if not access.anywhere(user, AI_VIEW) and not access.anywhere(user, AI_ASK):
        raise Http404
    viewer = access.anywhere(user, AI_VIEW)
    context = {"viewer": viewer, "asker": access.anywhere(user, AI_ASK)}
    if viewer:
        servers = access.endpoints(user, AI_VIEW).select_related("project", "release")
        bases = access.knowledge_bases(user, AI_VIEW).annotate(
            document_count=Count("documents", distinct=True),
            chunk_total=Sum("documents__chunk_count"),
            failed_count=Count("documents", filter=Q(documents__status=Document.Status.FAILED), distinct=True),
        )
        context |= {
            "gpus": gpu_services.summary(user),
            "servers": list(servers.order_by("name")[:RECENT]),
            "server_count": servers.count(),
            "servers_failing": servers.exclude(last_error="").count(),
            "bases": list(bases.order_by("-builtin", "name")[:RECENT]),
            "base_count": bases.count(),
            "may_serve": access.anywhere(user, AI_SERVE),
            "may_build": access.anywhere(user, AI_KNOWLEDGE),
        }
    if context["asker"]:
        context["conversations"] = list(Conversation.objects.filter(user=user).order_by("-updated_at")[:RECENT])
    return render(request, "ai/home.html", context)
