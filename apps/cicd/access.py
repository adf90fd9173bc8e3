"""Who may see and act on CI/CD, in one place. A pipeline's place is its project's cluster and its namespace:
``accounts.access`` answers for that place, in the database for lists (``pipelines``) and per row for buttons.
Missing and forbidden pipelines and runs both answer 404. Registries and the vulnerability database are the
platform's (``cicd.admin``); a project's base images, policy and exceptions belong to those who hold the
capability on the project's namespaces."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from apps.accounts import access
from apps.accounts.capabilities import CICD_ADMIN, CICD_EDIT, CICD_VIEW
from apps.accounts.models import Project
from apps.cicd.models import Pipeline, Registry, Run

PLACE = {"cluster": "project__cluster", "namespace": "namespace"}
RUN_PLACE = {"cluster": "pipeline__project__cluster", "namespace": "pipeline__namespace"}


def q(user, code: str) -> Q:
    return access.q(user, code, **PLACE)


def pipelines(user, code: str = CICD_VIEW) -> QuerySet[Pipeline]:
    return Pipeline.objects.filter(q(user, code)).select_related("project__cluster", "registry", "base_image")


def pipeline(user, pk: int, code: str = CICD_VIEW) -> Pipeline:
    found = pipelines(user, code).filter(pk=pk).first()
    if found is None:
        raise Http404
    return found


def may(user, code: str, pipeline: Pipeline) -> bool:
    return access.may(user, code, cluster=pipeline.project.cluster_id, namespace=pipeline.namespace)


def runs(user, code: str = CICD_VIEW) -> QuerySet[Run]:
    return Run.objects.filter(access.q(user, code, **RUN_PLACE)).select_related(
        "pipeline__project__cluster", "actor", "job"
    )


def run(user, pk: int, code: str = CICD_VIEW) -> Run:
    found = runs(user, code).filter(pk=pk).first()
    if found is None:
        raise Http404
    return found


def holds(user, code: str) -> bool:
    held = access.scope(user, code)
    return held.everywhere or bool(held.clusters) or any(held.namespaces.values())


def is_admin(user) -> bool:
    return access.may(user, CICD_ADMIN)


def projects(user, code: str) -> QuerySet[Project]:
    """Projects in which ``user`` holds ``code`` on at least one of their namespaces (or the whole cluster)."""
    held = access.scope(user, code)
    base = Project.objects.select_related("cluster")
    if held.everywhere:
        return base
    ids = [
        p.pk
        for p in base.filter(cluster__in=set(held.clusters) | set(held.namespaces))
        if p.cluster_id in held.clusters or set(p.namespaces) & set(held.namespaces.get(p.cluster_id, ()))
    ]
    return base.filter(pk__in=ids)


def project_namespaces(user, project: Project, code: str) -> list[str]:
    """The namespaces of ``project`` where ``user`` holds ``code``."""
    return [ns for ns in project.namespaces if access.may(user, code, cluster=project.cluster_id, namespace=ns)]


def may_on_project(user, code: str, project: Project) -> bool:
    """Project-wide things (base images, policy, exceptions): ``code`` on every namespace of the project."""
    return bool(project.namespaces) and all(
        access.may(user, code, cluster=project.cluster_id, namespace=ns) for ns in project.namespaces
    )


def registries(user) -> QuerySet[Registry]:
    """Registries a person may pick or read: the platform's answer for admins; else those of the clusters and
    projects where they edit pipelines."""
    if is_admin(user):
        return Registry.objects.select_related("cluster", "project")
    allowed = projects(user, CICD_EDIT)
    return Registry.objects.filter(Q(project__in=allowed) | Q(cluster__in=allowed.values("cluster"))).select_related(
        "cluster", "project"
    )
