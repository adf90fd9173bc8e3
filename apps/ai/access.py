"""Who may see and act on AI objects, in one place.

- A project's knowledge bases, documents and model endpoints belong to the project: a capability held in any of the
  project's namespaces (or on its cluster, or the whole platform) reaches them; nobody else sees them, in lists,
  pages, search or the assistant's retrieval.
- The built-in operations knowledge base has no project: everyone who may ask anywhere reads it; ``ai.admin``
  rebuilds it.
- Endpoints without a project are the platform's: usable by everyone who may ask, registered by ``ai.admin``.

Fetch-and-authorize helpers raise Http404 for what a person may not see, as for what is missing.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from apps.accounts import access
from apps.accounts.capabilities import AI_ADMIN
from apps.accounts.models import Project
from apps.ai.models import Endpoint, KnowledgeBase

# Where a project lives, as field paths for access.q (a project is held when any of its namespaces is).
PROJECT = {"cluster": "cluster", "namespace": "namespaces__overlap"}


def is_admin(user) -> bool:
    return access.may(user, AI_ADMIN)


def anywhere(user, code: str) -> bool:
    """``code`` held somewhere: on the platform, a cluster or a namespace."""
    held = access.scope(user, code)
    return held.everywhere or bool(held.clusters) or any(held.namespaces.values())


def projects(user, code: str) -> QuerySet[Project]:
    """The projects where ``user`` holds ``code`` in at least one namespace."""
    return Project.objects.filter(access.q(user, code, **PROJECT)).select_related("cluster").order_by("name")


def on_project(user, code: str, project: Project | None) -> bool:
    if project is None:
        return is_admin(user)
    return projects(user, code).filter(pk=project.pk).exists()


def _project_q(user, code: str, prefix: str) -> Q:
    found = access.q(user, code, cluster=f"{prefix}cluster", namespace=f"{prefix}namespaces__overlap")
    # Held everywhere is Q(), which an "or" with another Q drops (Q() | Q(x) is Q(x)): say "every row" instead.
    return found if found else Q(pk__isnull=False)


def knowledge_bases(user, code: str, *, builtin: bool = True) -> QuerySet[KnowledgeBase]:
    """The knowledge bases ``user`` holds ``code`` on; with ``builtin`` also the operations knowledge base when
    ``code`` is held anywhere (it is everyone's)."""
    allowed = _project_q(user, code, "project__")
    if builtin and anywhere(user, code):
        allowed |= Q(builtin=True)
    return KnowledgeBase.objects.filter(allowed).select_related("project__cluster")


def knowledge_base(user, pk: int, code: str) -> KnowledgeBase:
    """The knowledge base, when ``user`` holds ``code`` on it; 404 otherwise. Changing the built-in one takes
    ``ai.admin``, reading it takes ``code`` anywhere."""
    kb = KnowledgeBase.objects.select_related("project__cluster").filter(pk=pk).first()
    if kb is None:
        raise Http404
    if kb.builtin:
        if not anywhere(user, code):
            raise Http404
        return kb
    if not knowledge_bases(user, code, builtin=False).filter(pk=pk).exists():
        raise Http404
    return kb


def endpoints(user, code: str) -> QuerySet[Endpoint]:
    """The endpoints of the projects where ``user`` holds ``code``, and the platform's when held anywhere."""
    allowed = _project_q(user, code, "project__")
    if anywhere(user, code):
        allowed |= Q(project__isnull=True)
    return Endpoint.objects.filter(allowed).select_related("project__cluster", "release")


def endpoint(user, pk: int, code: str) -> Endpoint:
    found = endpoints(user, code).filter(pk=pk).first()
    if found is None:
        raise Http404
    return found
