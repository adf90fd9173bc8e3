"""What every action on a cluster object shares: the object it is about, the sentence for a refusal, and the
audit event of its outcome. Used by the actions (services.py) and by the drain job (drain.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from apps.clusters import kube
from apps.clusters.kinds import BY_KIND
from apps.clusters.models import Cluster
from apps.core import audit
from apps.core.models import AuditEvent


class ActionError(Exception):
    """Kubernetes refused or could not do the action; the message is the sentence to show. ``line``: the line of
    the person's YAML it is about, when known (a syntax error)."""

    line: int | None = None


@dataclass(frozen=True)
class Target:
    """The object an action is about."""

    cluster: Cluster
    kind: str
    namespace: str
    name: str

    @property
    def plural(self) -> str:
        return BY_KIND[self.kind].plural


def refused_sentence(exc: kube.KubeError, verb: str, target: Target) -> str:
    """Turn a Kubernetes error into the sentence for this action (RBAC refusals name what and where)."""
    if isinstance(exc, kube.Forbidden):
        where = {"verb": verb, "plural": target.plural, "namespace": target.namespace, "cluster": target.cluster.name}
        if target.namespace:
            return _("Kubernetes refused: you may not %(verb)s %(plural)s in namespace %(namespace)s.") % where
        return _("Kubernetes refused: you may not %(verb)s %(plural)s in cluster %(cluster)s.") % where
    if isinstance(exc, kube.Conflict):
        return _("Someone else changed this object since you opened it; reload it and try again.")
    return str(exc)


def audit_action(actor, action: str, target: Target, *, request=None, detail=None, error: str = "") -> None:
    """One audit event for an action on ``target``: success, or failure with the sentence the person saw."""
    audit.record(
        actor=actor,
        action=action,
        result=AuditEvent.Result.FAILURE if error else AuditEvent.Result.SUCCESS,
        cluster=target.cluster.name,
        namespace=target.namespace,
        kind=target.kind,
        name=target.name,
        detail={**(detail or {}), **({"error": error} if error else {})},
        request=request,
    )
