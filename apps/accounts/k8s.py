"""Applying the RBAC projection to a cluster, repairing drift and removing what is stale.

Runs as Kubemate's own identity (the only place besides the sync that does):
it must create ClusterRoles and bindings that no operator could grant.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from apps.accounts.projection import API_VERSION, MANAGED_LABEL, Owned, crd_manifests, desired_state
from apps.clusters import kube
from apps.clusters.models import Cluster

OWNER_KINDS = ("PlatformUser", "PlatformRole", "PlatformBinding")
DEPENDENT_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "RoleBinding")


@dataclass
class ReconcileReport:
    applied: int = 0
    drift: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _key(obj: dict) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def _label(key: tuple[str, str, str]) -> str:
    kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _essence(obj: dict) -> dict:
    """The fields the projection owns, normalized for comparison."""
    if obj["kind"] == "ClusterRole":
        return {
            "rules": sorted(
                (
                    tuple(r.get("apiGroups", [])),
                    tuple(sorted(r.get("resources", []))),
                    tuple(sorted(r.get("verbs", []))),
                )
                for r in obj.get("rules") or []
            )
        }
    if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
        return {
            "roleRef": obj["roleRef"]["name"],
            "subjects": sorted((s["kind"], s.get("namespace", ""), s["name"]) for s in obj.get("subjects") or []),
        }
    return {}


def _edited_by_others(live: dict) -> bool:
    """Someone other than Kubemate wrote this object's fields (kubectl edit, a script)."""
    return any(
        entry.get("manager") != kube.FIELD_MANAGER and not entry.get("subresource")
        for entry in live.get("metadata", {}).get("managedFields") or []
    )


def _existed_before(live_owner: dict | None, dependent: dict) -> bool:
    """Whether the owner's last applied state already called for ``dependent`` (so its absence is drift)."""
    if live_owner is None:
        return False
    if dependent["kind"] == "RoleBinding":
        return dependent["metadata"]["namespace"] in (live_owner.get("spec", {}).get("namespaces") or [])
    return True


def _list_managed(k: kube.Client, kind: str) -> dict[tuple[str, str, str], dict]:
    items = k.list(kind, label_selector=f"{MANAGED_LABEL}=true")
    return {_key({**item, "kind": kind}): {**item, "kind": kind} for item in items}


def ensure_crds(k: kube.Client, timeout: float = 30) -> None:
    for crd in crd_manifests():
        k.apply(crd)
    deadline = time.monotonic() + timeout
    for crd in crd_manifests():
        while True:
            live = k.get("CustomResourceDefinition", None, crd["metadata"]["name"])
            conditions = (live.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                break
            if time.monotonic() > deadline:
                raise kube.ClusterUnreachable(
                    _("The Kubemate resource types did not become ready in cluster %(name)s.")
                    % {"name": k.cluster.name}
                )
            time.sleep(0.2)


def reconcile(cluster: Cluster) -> ReconcileReport:
    """Make the cluster's Kubemate RBAC equal to the platform's: apply, repair, remove. Idempotent."""
    report = ReconcileReport()
    desired: list[Owned] = desired_state(cluster)
    with kube.client(cluster) as k:
        ensure_crds(k)
        live_owners: dict = {}
        for kind in OWNER_KINDS:
            live_owners.update(_list_managed(k, kind))
        live_dependents: dict = {}
        for kind in DEPENDENT_KINDS:
            live_dependents.update(_list_managed(k, kind))

        wanted: set[tuple[str, str, str]] = set()
        for owned in desired:
            owner_key = _key(owned.owner)
            applied_owner = k.apply(owned.owner)
            report.applied += 1
            wanted.add(owner_key)
            reference = {
                "apiVersion": API_VERSION,
                "kind": owned.owner["kind"],
                "name": owned.owner["metadata"]["name"],
                "uid": applied_owner["metadata"]["uid"],
            }
            for dependent in owned.dependents:
                key = _key(dependent)
                wanted.add(key)
                live = live_dependents.get(key)
                if live is not None and _essence(live) != _essence(dependent):
                    if _edited_by_others(live):
                        report.drift.append(f"{_label(key)} was changed by hand")
                    if "roleRef" in dependent and live["roleRef"]["name"] != dependent["roleRef"]["name"]:
                        # roleRef cannot be changed in place.
                        k.delete(key[0], key[1] or None, key[2])
                elif live is None and _existed_before(live_owners.get(owner_key), dependent):
                    report.drift.append(f"{_label(key)} was deleted by hand")
                k.apply({**dependent, "metadata": {**dependent["metadata"], "ownerReferences": [reference]}})
                report.applied += 1

        # Dependents first, then owners, so nothing waits on garbage collection.
        for key in sorted(set(live_dependents) - wanted):
            if k.delete(key[0], key[1] or None, key[2]):
                report.removed.append(_label(key))
        for key in sorted(set(live_owners) - wanted):
            if k.delete(key[0], None, key[2]):
                report.removed.append(_label(key))
    return report


def review_access(cluster: Cluster, user, checks: list[tuple[str, str, str, str]]) -> list[bool]:
    """Ask the cluster, as ``user``, whether each (verb, group, resource[/subresource], namespace) is allowed."""
    answers = []
    with kube.client(cluster, as_user=user) as k:
        for verb, group, resource, namespace in checks:
            resource, _sep, subresource = resource.partition("/")
            answers.append(k.may(verb, group, resource, subresource, namespace))
    return answers
