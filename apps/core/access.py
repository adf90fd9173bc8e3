"""Who may see which Job: a person sees their own jobs, a superuser sees all.

Core holds no grants (those live in ``accounts.access``, above core), so the jobs get their
own two helpers in the same shape: a list filter and fetch-and-authorize (404 for missing and
forbidden alike).
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from apps.core.models import Job


def jobs_q(user) -> Q:
    return Q() if user.is_superuser else Q(actor=user)


def jobs(user) -> QuerySet[Job]:
    """The jobs ``user`` may see, newest first (the model's order)."""
    return Job.objects.select_related("actor").filter(jobs_q(user))


def job(user, pk) -> Job:
    """The job, when ``user`` may see it; 404 otherwise."""
    return get_object_or_404(jobs(user), pk=pk)
