"""The AI overview: the GPUs, model servers, knowledge bases and recent questions a person may see."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from apps.accounts.capabilities import AI_VIEW
from apps.ai import access


@login_required
def home(request):
    if not access.anywhere(request.user, AI_VIEW):
        raise Http404
    return render(request, "ai/home.html", {})
