"""A Velero restore approved under four-eyes approval (apps/compliance/approvals), started as the maker from its
recorded backup, namespaces and mapping. Registered with apps/core/gates.py in apps.py.

``stale``: the backup is gone, or was replaced under the same name (its start time moved), or the maker may no
longer restore there. ``rendered`` is the preview made again: an object created or deleted in the target
namespaces since the request changes what the restore would create, and the compliance app refuses it as stale."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from apps.backups.services import Refused
from apps.backups.velero import services
from apps.clusters import kube
from apps.clusters.models import Cluster
from apps.core.deferred import N_
from apps.core.deferred import text as D


def _cluster(payload: dict) -> Cluster | None:
    return Cluster.objects.filter(pk=payload.get("cluster")).first()


def _maker(payload: dict):
    """The person the restore is read and made as (Velero's objects are read with their rights)."""
    return get_user_model().objects.filter(pk=payload.get("maker"), is_active=True).first()


def stale(payload: dict, base: dict) -> str | None:
    cluster, maker = _cluster(payload), _maker(payload)
    if cluster is None:
        return D(N_("The cluster was removed since the request."))
    if maker is None:
        return D(N_("The person who asked for the change can no longer sign in."))
    try:
        view = services.backup_of(actor=maker, cluster=cluster, name=payload["backup"])
    except kube.KubeError as exc:
        return D(N_("The cluster could not be read to check the request: %(error)s"), error=str(exc)[:300])
    if view is None:
        return D(N_("Backup %(name)s is gone since the request."), name=payload["backup"])
    started = view.started.isoformat() if view.started else ""
    if started != base.get("started"):
        return D(
            N_("Backup %(name)s was replaced by another backup of the same name since the request."),
            name=payload["backup"],
        )
    return None


def _preview(payload: dict) -> dict | None:
    """The restore's preview made again now, as the maker; None when it cannot be (gone, refused)."""
    cluster, maker = _cluster(payload), _maker(payload)
    if cluster is None or maker is None:
        return None
    try:
        return services.preview(
            actor=maker,
            cluster=cluster,
            backup_name=payload["backup"],
            namespaces=payload["namespaces"],
            mapping=payload["mapping"],
        )
    except (Refused, kube.KubeError):
        return None


def rendered(payload: dict) -> list[dict] | None:
    shown = _preview(payload)
    return shown["objects"] if shown is not None else []  # none: cannot be made now, differs from what was approved


def apply(payload: dict, maker, *, change_request) -> str:
    """Start the approved preview. The compliance app made the preview again as the maker (``rendered``: the
    maker may still restore there) and found it equal to ``change_request.manifests`` just before."""
    shown = services.shown_restore(
        payload["backup"],
        payload["namespaces"],
        payload["mapping"],
        change_request.manifests,
        started=change_request.base.get("started", ""),
    )
    row = services.start_restore(actor=maker, cluster=_cluster(payload), shown=shown)
    return D(N_("Restore %(name)s started from backup %(backup)s."), name=row.name, backup=payload["backup"])
