"""The desired RBAC state of one cluster, computed from the platform's users, roles and bindings.

Pure data: manifests as dicts, no cluster calls (apps/accounts/k8s.py applies
them). Each generated object belongs to exactly one custom resource:

    PlatformUser  kubemate-u<id>  -> ServiceAccount kubemate-system/kubemate-u<id>
    PlatformRole  <slug>          -> ClusterRole kubemate:<slug>
    PlatformBinding kubemate-b<id> -> RoleBinding kubemate-b<id> in each project namespace,
                                      or ClusterRoleBinding kubemate-b<id>

A role that holds backup capabilities also owns ClusterRole ``kubemate:<slug>:velero`` with only their Velero
rules, and a project binding of it a RoleBinding ``kubemate-b<id>-velero`` in the cluster's Velero namespace (when
the cluster names one): Velero's Backups, Schedules and Restores live there, not in the project's namespaces. The
console lets such a person name only their own namespaces in them (apps/backups/access.py).

Superusers are bound to the platform-admin role through PlatformBinding
``kubemate-superusers``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model

from apps.accounts import capabilities
from apps.accounts.models import Binding, Role
from apps.clusters.kube import MANAGED_NAMESPACE, user_service_account
from apps.clusters.models import Cluster

GROUP = "kubemate.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
MANAGED_LABEL = "kubemate.io/managed"
RBAC_GROUP = "rbac.authorization.k8s.io"
SUPERUSERS_BINDING = "kubemate-superusers"
PLATFORM_ADMIN_ROLE = "platform-admin"


@dataclass
class Owned:
    """A custom resource and the generated objects it owns."""

    owner: dict
    dependents: list[dict] = field(default_factory=list)


def _meta(name: str, namespace: str | None = None, **labels: str) -> dict:
    meta = {"name": name, "labels": {MANAGED_LABEL: "true", **labels}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _subject(user) -> dict:
    return {"kind": "ServiceAccount", "name": user_service_account(user), "namespace": MANAGED_NAMESPACE}


def user_objects(user) -> Owned:
    name = user_service_account(user)
    owner = {
        "apiVersion": API_VERSION,
        "kind": "PlatformUser",
        "metadata": _meta(name),
        "spec": {"username": user.username, "displayName": user.get_full_name() or user.username},
    }
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, MANAGED_NAMESPACE)}
    return Owned(owner, [account])


def velero_rules(codes) -> list[dict]:
    """The Velero rules of ``codes`` (for the Velero namespace), [] when they hold none."""
    return [r for r in capabilities.rules_for(codes) if capabilities.VELERO_GROUP in r["apiGroups"]]


def velero_role_name(role: Role) -> str:
    return f"{role.cluster_role_name}:velero"


def role_objects(role: Role) -> Owned:
    owner = {
        "apiVersion": API_VERSION,
        "kind": "PlatformRole",
        "metadata": _meta(role.slug),
        "spec": {"displayName": role.name_en, "capabilities": sorted(role.capabilities)},
    }
    cluster_role = {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRole",
        "metadata": _meta(role.cluster_role_name),
        "rules": capabilities.rules_for(role.capabilities),
    }
    dependents = [cluster_role]
    if velero_rules(role.capabilities):
        dependents.append(
            {
                "apiVersion": f"{RBAC_GROUP}/v1",
                "kind": "ClusterRole",
                "metadata": _meta(velero_role_name(role)),
                "rules": velero_rules(role.capabilities),
            }
        )
    return Owned(owner, dependents)


def binding_objects(
    name: str, role: Role, subjects: list[dict], namespaces: list[str] | None, velero_namespace: str = ""
) -> Owned:
    """A ClusterRoleBinding when ``namespaces`` is None, else one RoleBinding per namespace (and one in
    ``velero_namespace`` to the role's Velero rules, when it has any)."""
    owner = {
        "apiVersion": API_VERSION,
        "kind": "PlatformBinding",
        "metadata": _meta(name),
        "spec": {
            "role": role.slug,
            "subjects": [s["name"] for s in subjects],
            "namespaces": sorted(namespaces) if namespaces is not None else [],
        },
    }
    role_ref = {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role.cluster_role_name}
    if namespaces is None:
        dependents = [
            {
                "apiVersion": f"{RBAC_GROUP}/v1",
                "kind": "ClusterRoleBinding",
                "metadata": _meta(name),
                "roleRef": role_ref,
                "subjects": subjects,
            }
        ]
    else:
        dependents = [
            {
                "apiVersion": f"{RBAC_GROUP}/v1",
                "kind": "RoleBinding",
                "metadata": _meta(name, namespace),
                "roleRef": role_ref,
                "subjects": subjects,
            }
            for namespace in sorted(set(namespaces))
        ]
        if velero_namespace and velero_rules(role.capabilities):
            dependents.append(
                {
                    "apiVersion": f"{RBAC_GROUP}/v1",
                    "kind": "RoleBinding",
                    "metadata": _meta(f"{name}-velero", velero_namespace),
                    "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": velero_role_name(role)},
                    "subjects": subjects,
                }
            )
    return Owned(owner, dependents)


def desired_state(cluster: Cluster) -> list[Owned]:
    users = list(get_user_model().objects.filter(is_active=True).order_by("pk"))
    state = [user_objects(user) for user in users]
    roles = {role.pk: role for role in Role.objects.all()}
    state += [role_objects(role) for role in roles.values()]

    # Superusers hold every capability in the console (access.grants_for), so they are bound to a role with
    # every capability here too, whatever the Role table says.
    superusers = [_subject(u) for u in users if u.is_superuser]
    admin_role = next((r for r in roles.values() if r.slug == PLATFORM_ADMIN_ROLE), None)
    if admin_role is None:
        admin_role = Role(
            slug=PLATFORM_ADMIN_ROLE,
            name_en="Platform administrator",
            name_zh="平台管理员",
            capabilities=sorted(capabilities.BY_CODE),
        )
        state.append(role_objects(admin_role))
    state.append(binding_objects(SUPERUSERS_BINDING, admin_role, superusers, None))

    active_ids = {u.pk for u in users}
    bindings = (
        (
            Binding.objects.filter(scope=Binding.Scope.PLATFORM)
            | Binding.objects.filter(scope=Binding.Scope.CLUSTER, cluster=cluster)
            | Binding.objects.filter(scope=Binding.Scope.PROJECT, project__cluster=cluster)
        )
        .select_related("user", "group", "project")
        .prefetch_related("group__user_set")
    )
    for binding in bindings.order_by("pk"):
        if binding.user_id:
            members = [binding.user] if binding.user_id in active_ids else []
        else:
            members = sorted((u for u in binding.group.user_set.all() if u.pk in active_ids), key=lambda u: u.pk)
        namespaces = binding.project.namespaces if binding.scope == Binding.Scope.PROJECT else None
        state.append(
            binding_objects(
                binding.k8s_name,
                roles[binding.role_id],
                [_subject(u) for u in members],
                namespaces,
                cluster.velero_namespace,
            )
        )
    return state


def crd_manifests() -> list[dict]:
    def crd(kind: str, plural: str, spec_properties: dict) -> dict:
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{GROUP}", "labels": {MANAGED_LABEL: "true"}},
            "spec": {
                "group": GROUP,
                "scope": "Cluster",
                "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
                "versions": [
                    {
                        "name": VERSION,
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {"spec": {"type": "object", "properties": spec_properties}},
                            }
                        },
                    }
                ],
            },
        }

    strings = {"type": "array", "items": {"type": "string"}}
    return [
        crd("PlatformUser", "platformusers", {"username": {"type": "string"}, "displayName": {"type": "string"}}),
        crd("PlatformRole", "platformroles", {"displayName": {"type": "string"}, "capabilities": strings}),
        crd(
            "PlatformBinding",
            "platformbindings",
            {"role": {"type": "string"}, "subjects": strings, "namespaces": strings},
        ),
    ]
