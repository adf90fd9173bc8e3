"""The RBAC reconcile of one cluster: apply the projection (k8s.py) and audit what had drifted or gone stale.

Run by the ``accounts.reconcile_cluster`` task (tasks.py) after every change and on a schedule; tests and the
demo call it directly.
"""

from __future__ import annotations

import logging

from apps.accounts.k8s import reconcile
from apps.clusters.kube import KubeError
from apps.clusters.models import Cluster
from apps.core import audit
from apps.core.models import AuditEvent

logger = logging.getLogger(__name__)


def reconcile_rbac(cluster: Cluster):
    """Apply the RBAC projection to ``cluster`` and audit what had drifted or gone stale."""
    try:
        report = reconcile(cluster)
    except KubeError as exc:
        audit.record(
            actor=None,
            action="accounts.rbac.reconcile",
            result=AuditEvent.Result.FAILURE,
            cluster=cluster.name,
            detail={"error": str(exc)},
        )
        raise
    for sentence in report.drift:
        audit.record(actor=None, action="accounts.rbac.drift_repaired", cluster=cluster.name, detail={"what": sentence})
    for label in report.removed:
        audit.record(actor=None, action="accounts.rbac.stale_removed", cluster=cluster.name, detail={"what": label})
    logger.info(
        "rbac reconciled",
        extra={
            "cluster": cluster.name,
            "applied": report.applied,
            "drift": len(report.drift),
            "removed": len(report.removed),
        },
    )
    return report
