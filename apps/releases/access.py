"""Who may see and act on releases: ``accounts.access`` applied to a release's place (its project's
cluster and its namespace). Missing and forbidden releases both answer 404."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.accounts import access
from apps.releases.models import Release

# Where a release lives, as field paths for access.q.
PLACE = {"cluster": "project__cluster", "namespace": "namespace"}


def q(user, code: str) -> Q:
    """The filter keeping the releases whose namespace ``user`` holds ``code`` in."""
    return access.q(user, code, **PLACE)


def release(user, pk: int, code: str) -> Release:
    """The release, when ``user`` holds ``code`` in its namespace; 404 otherwise."""
    return access.get_or_404(Release.objects.select_related("project__cluster"), user, code, **PLACE, pk=pk)


def may(user, code: str, release: Release) -> bool:
    return access.may(user, code, cluster=release.project.cluster_id, namespace=release.namespace)


def require(user, code: str, release: Release) -> None:
    access.require(user, code, cluster=release.project.cluster_id, namespace=release.namespace)


def releases(user, code: str) -> QuerySet[Release]:
    return Release.objects.filter(q(user, code))
