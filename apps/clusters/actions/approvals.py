"""A YAML edit approved under four-eyes approval (apps/compliance/approvals), applied from its sealed text as the
maker. Registered with apps/core/gates.py in apps.py. The edit carries the resourceVersion it was made against: an
object changed since (a hand edit, a controller) makes the request stale before anything is sent."""

from __future__ import annotations

from apps.clusters import kube
from apps.clusters.actions import k8s as k8s_actions
from apps.clusters.actions import services
from apps.clusters.actions.targets import Target
from apps.clusters.models import Cluster
from apps.core import crypto
from apps.core.deferred import N_
from apps.core.deferred import text as D


def _target(payload: dict) -> Target | None:
    """The object a request is about: ``kind``/``namespace``/``name``, or the node of a drain."""
    cluster = Cluster.objects.filter(pk=payload.get("cluster")).first()
    if cluster is None:
        return None
    if "node" in payload:
        return Target(cluster=cluster, kind="Node", namespace="", name=payload["node"])
    return Target(cluster=cluster, kind=payload["kind"], namespace=payload["namespace"], name=payload["name"])


def _live(payload: dict) -> tuple[Target | None, dict | None, str | None]:
    """The request's object as the cluster has it now, read as the console; or the sentence why it cannot be."""
    target = _target(payload)
    if target is None:
        return None, None, D(N_("The cluster was removed since the request."))
    try:
        with kube.client(target.cluster) as k:
            live = k8s_actions.read_object(k, target.kind, target.namespace, target.name)
    except kube.NotFound:
        live = None
    except kube.KubeError as exc:
        return (
            target,
            None,
            D(N_("The cluster could not be read to check the request: %(error)s"), error=str(exc)[:300]),
        )
    if live is None:
        return (
            target,
            None,
            D(N_("%(kind)s %(name)s was deleted since the request."), kind=target.kind, name=target.name),
        )
    return target, live, None


def stale(payload: dict, base: dict) -> str | None:
    target, live, gone = _live(payload)
    if gone is not None:
        return gone
    now = ((live or {}).get("metadata") or {}).get("resourceVersion")
    if now != base.get("resource_version"):
        return D(
            N_(
                "%(kind)s %(name)s was changed in the cluster since the request: what was reviewed is no longer "
                "what would change. The maker must ask again."
            ),
            kind=target.kind,
            name=target.name,
        )
    return None


def rendered(payload: dict) -> list[dict] | None:
    target = _target(payload)
    if target is None:
        return None
    manifest = services.parse_edit(crypto.decrypt(payload["sealed"]), target, payload["resource_version"])
    return [services.masked(manifest)]


def apply(payload: dict, maker, *, change_request) -> str:
    target = _target(payload)
    version = services.apply_yaml_edit(
        actor=maker,
        target=target,
        text=crypto.decrypt(payload["sealed"]),
        resource_version=payload["resource_version"],
        approved=True,
    )
    return D(
        N_("Applied: %(kind)s %(name)s is now at version %(version)s."),
        kind=target.kind,
        name=target.name,
        version=version,
    )


def stale_drain(payload: dict, base: dict) -> str | None:
    """A drain evicts what is on the node when it runs: only a node that is gone makes its request stale."""
    return _live(payload)[2]


def rendered_drain(payload: dict) -> list[dict]:
    node = payload["node"]
    return [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}, "spec": {"unschedulable": True}}]


def apply_drain(payload: dict, maker, *, change_request) -> str:
    job = services.start_drain(actor=maker, target=_target(payload), approved=True)
    return D(N_("The drain of %(node)s started as a job (%(job)s)."), node=payload["node"], job=str(job.pk))
