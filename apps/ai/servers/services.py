"""Every write of the model server pages: deploy and remove in-cluster servers (as releases), register, change and
remove external endpoints, and check what a server serves.

A model server is a release (apps/releases) deployed as the user through ``releases.services``, so Kubernetes'
RBAC, the dry run, the revision history and the rollout wait are the releases app's; this module adds the
``Endpoint`` row that the assistant and the pages use, and the ``ai.server.*`` / ``ai.endpoint.*`` audit events.
Callers have checked the console capabilities; the functions check the place again (a namespace of the project).
"""

from __future__ import annotations

from django.db import transaction
from django.http import Http404
from django.utils import timezone

from apps.accounts import access as accounts_access
from apps.accounts.capabilities import AI_SERVE, RELEASES_DEPLOY
from apps.accounts.models import Project
from apps.ai import llm
from apps.ai.models import Endpoint
from apps.ai.servers import spec as server_spec
from apps.core import audit, deferred, gates
from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.core.models import AuditEvent
from apps.releases import services as release_services


class ServerError(deferred.Failure):
    """The server could not be deployed, removed or registered; the message says why and what to do."""


def _audit(
    actor, action: str, endpoint: Endpoint, *, namespace: str = "", request=None, detail=None, error: str = ""
) -> None:
    """One audit event; ``namespace`` (an in-cluster server's) makes it a ModelServer, else a ModelEndpoint."""
    audit.record(
        actor=actor,
        action=action,
        result=AuditEvent.Result.FAILURE if error else AuditEvent.Result.SUCCESS,
        cluster=endpoint.project.cluster.name if endpoint.project else "",
        namespace=namespace,
        kind="ModelServer" if namespace else "ModelEndpoint",
        name=endpoint.name,
        detail={
            "kind": endpoint.kind,
            "project": endpoint.project.slug if endpoint.project else "",
            "url": endpoint.base_url,
            **(detail or {}),
            **({"error": error} if error else {}),
        },
        request=request,
    )


def require_serving(user, project: Project, namespace: str) -> None:
    """404 unless ``user`` may serve models (ai.serve) and deploy releases in ``namespace`` of ``project``."""
    if namespace not in project.namespaces:
        raise Http404
    for code in (AI_SERVE, RELEASES_DEPLOY):
        accounts_access.require(user, code, cluster=project.cluster, namespace=namespace)


def preview_yaml(settings: server_spec.ServerSettings, namespace: str) -> str:
    return release_services.preview_yaml(settings.name, namespace, server_spec.release_spec(settings))


def deploy_server(
    *, actor, project: Project, namespace: str, settings: server_spec.ServerSettings, request=None
) -> tuple[Endpoint, release_services.DeployOutcome]:
    """Create the server's release (after Kubernetes' dry run of every object, as ``actor``), deploy it, and record
    its endpoint. A deploy the cluster refuses is undone (its objects and release removed) so no half-deployed
    server stays behind; the sentence says why."""
    require_serving(actor, project, namespace)
    spec = server_spec.release_spec(settings)
    url = server_spec.base_url(settings.kind, settings.name, namespace, settings.port)
    try:
        release = release_services.create_release(
            actor=actor, project=project, namespace=namespace, name=settings.name, spec=spec, request=request
        )
    except release_services.ReleaseError as exc:
        raise ServerError(exc.stored) from None
    try:
        outcome = release_services.deploy_release(actor=actor, release=release, request=request)
    except release_services.ReleaseError as exc:
        sentence = exc.stored
        try:
            # Undoing what this call just made: not a change of its own to approve.
            release_services.delete_release(actor=actor, release=release, request=request, approved=True)
        except release_services.ReleaseError as undo:
            sentence = deferred.join(
                sentence,
                D(
                    N_("Removing what was applied failed as well (%(reason)s): remove release %(name)s by hand."),
                    reason=undo.stored,
                    name=release.name,
                ),
            )
        endpoint = Endpoint(name=settings.name, kind=settings.kind, project=project, base_url=url)
        _audit(actor, "ai.server.deployed", endpoint, namespace=namespace, request=request, error=sentence)
        raise ServerError(sentence) from None
    with transaction.atomic():
        endpoint = Endpoint.objects.create(
            name=settings.name,
            kind=settings.kind,
            project=project,
            release=release,
            base_url=url,
            default_model=server_spec.served_name(settings.models[0]) if settings.models else "",
            served_models=[],
            created_by=actor,
        )
        _audit(
            actor,
            "ai.server.deployed",
            endpoint,
            namespace=namespace,
            request=request,
            detail={
                "image": settings.image,
                "models": list(settings.models),
                "gpus": settings.gpus,
                "gpu_resource": settings.gpu_resource,
                "volume": settings.volume.claim if settings.volume.mode != "none" else "",
                "revision": outcome.revision.number if outcome.revision else None,
            },
        )
    return endpoint, outcome


def delete_server(*, actor, endpoint: Endpoint, request=None) -> None:
    """Remove an in-cluster server: its release's objects (Deployment, Service and the volume claim it created) as
    ``actor``, the release with its history and, with it, the endpoint. A refusal by the cluster leaves everything as it
    was and says why."""
    release = endpoint.release
    if release is None:
        raise ServerError(
            D(N_("%(name)s is an external endpoint, not a server Kubemate deployed."), name=endpoint.name)
        )
    require_serving(actor, release.project, release.namespace)
    namespace = release.namespace
    try:
        release_services.delete_release(actor=actor, release=release, request=request)
    except gates.ApprovalRequired as exc:  # four-eyes approval: the server stays until an approver applies it
        raise ServerError(exc.stored) from None
    except release_services.ReleaseError as exc:
        _audit(actor, "ai.server.deleted", endpoint, namespace=namespace, request=request, error=exc.stored)
        raise ServerError(exc.stored) from None
    with transaction.atomic():
        _audit(actor, "ai.server.deleted", endpoint, namespace=namespace, request=request)
        # Removing the release removed its endpoint with it (Endpoint.release cascades); this only makes sure.
        Endpoint.objects.filter(pk=endpoint.pk).delete()


# --- external endpoints ------------------------------------------------------------------------------------------

CHANGED_FIELDS = ("name", "project", "kind", "base_url", "ca_pem", "default_model")


def _check_before_saving(endpoint: Endpoint, *, save_unchecked: bool) -> None:
    """List the endpoint's models (the row is not saved yet) and record the answer on it; a server that does not
    answer is refused unless ``save_unchecked``, with the sentence saying why."""
    try:
        models = llm.list_models(endpoint)
    except llm.LLMError as exc:
        if not save_unchecked:
            raise ServerError(
                D(
                    N_("Nothing was saved: %(reason)s Check the address and the key, or save without the check."),
                    reason=exc.deferred,
                )
            ) from None
        endpoint.last_error = exc.deferred
        endpoint.served_models = []
    else:
        endpoint.last_error = ""
        endpoint.served_models = [m.__dict__ for m in models]
        if not endpoint.default_model and models:
            endpoint.default_model = models[0].name
    endpoint.checked_at = timezone.now()


def register_endpoint(
    *,
    actor,
    name: str,
    project: Project | None,
    kind: str,
    base_url: str,
    api_key_encrypted: str | None,
    ca_pem: str = "",
    default_model: str = "",
    save_unchecked: bool = False,
    request=None,
) -> Endpoint:
    """Register an external endpoint after listing its models (see ``_check_before_saving``)."""
    endpoint = Endpoint(
        name=name,
        project=project,
        kind=kind,
        base_url=base_url,
        api_key_encrypted=api_key_encrypted or "",
        ca_pem=ca_pem,
        default_model=default_model,
        created_by=actor,
    )
    _check_before_saving(endpoint, save_unchecked=save_unchecked)
    with transaction.atomic():
        endpoint.save()
        _audit(
            actor,
            "ai.endpoint.registered",
            endpoint,
            request=request,
            detail={"api_key": "set" if endpoint.api_key_encrypted else "none", "checked": not endpoint.last_error},
        )
    return endpoint


def change_endpoint(
    *,
    actor,
    endpoint: Endpoint,
    values: dict,
    api_key_encrypted: str | None,
    save_unchecked: bool = False,
    request=None,
) -> Endpoint:
    """Change an external endpoint's fields (``values``: any of CHANGED_FIELDS); ``api_key_encrypted`` None keeps the
    stored key, "" removes it. The endpoint is checked again before the change is saved."""
    if endpoint.release_id:
        raise ServerError(D(N_("%(name)s is a server Kubemate deployed: change it as a release."), name=endpoint.name))
    before = {field: getattr(endpoint, field) for field in CHANGED_FIELDS}
    for field, value in values.items():
        if field in CHANGED_FIELDS:
            setattr(endpoint, field, value)
    key = "kept"
    if api_key_encrypted is not None:
        key = "replaced" if api_key_encrypted else "removed"
        if not api_key_encrypted and not endpoint.api_key_encrypted:
            key = "kept"
        endpoint.api_key_encrypted = api_key_encrypted
    _check_before_saving(endpoint, save_unchecked=save_unchecked)
    changed = sorted(f for f in CHANGED_FIELDS if getattr(endpoint, f) != before[f])
    with transaction.atomic():
        endpoint.save()
        _audit(
            actor,
            "ai.endpoint.changed",
            endpoint,
            request=request,
            detail={"changed": changed, "api_key": key, "checked": not endpoint.last_error},
        )
    return endpoint


def delete_endpoint(*, actor, endpoint: Endpoint, request=None) -> None:
    if endpoint.release_id:
        raise ServerError(
            D(N_("%(name)s is a server Kubemate deployed: remove the server instead."), name=endpoint.name)
        )
    with transaction.atomic():
        _audit(actor, "ai.endpoint.deleted", endpoint, request=request)
        endpoint.delete()


def check_endpoint(endpoint: Endpoint) -> str:
    """List the server's models again and store the answer on the row; "" or the sentence saying why not. A
    refresh of what the server says (like reloading a page), so it writes no audit event."""
    try:
        llm.check(endpoint)
    except llm.LLMError as exc:
        return str(exc.sentence)
    return ""
