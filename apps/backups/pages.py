"""What the backups pages share (views.py, velero/views.py, platform/views.py): the 405 answered after the lookups,
the way back to a cluster's page or the platform's with the Job just started, and that Job shown there."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import reverse

from apps.core.models import Job


def not_post(request):
    """405 for anything but POST, answered after the lookups: a person who may not see the object gets 404 for
    any method, as for a missing one."""
    return None if request.method == "POST" else HttpResponseNotAllowed(["POST"])


def started_job(request) -> Job | None:
    """The Job named by ``?job=`` when it is the person's own: what they just started, shown with its link."""
    try:
        pk = uuid.UUID(request.GET.get("job", ""))
    except ValueError:
        return None
    found = Job.objects.filter(pk=pk).first()
    if found is None or (found.actor_id != request.user.pk and not request.user.is_superuser):
        return None
    return found


def to_cluster(cluster_id: int, job_id=None):
    url = reverse("backups:cluster", args=[cluster_id])
    return redirect(f"{url}?{urlencode({'job': job_id})}" if job_id else url)


def to_platform(job_id=None):
    url = reverse("backups:platform")
    return redirect(f"{url}?{urlencode({'job': job_id})}" if job_id else url)
