"""The RBAC projection against a real apiserver: generated objects, ownership, drift repair, clean removal."""

import time

import pytest
from kubernetes import client

from apps.accounts import services
from apps.accounts.models import Project, Role
from apps.accounts.reconcile import reconcile_rbac
from apps.clusters.kube import impersonated_username
from apps.core.models import AuditEvent
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]
MANAGED = "kubemate.io/managed=true"


@pytest.fixture
def setup(registered_cluster, team_namespaces, admin_user):
    developer = UserFactory()
    role = Role.objects.get(slug="developer")
    project = services.save_project(
        actor=admin_user,
        project=Project(
            cluster=registered_cluster, slug="team-a", name="Team A", namespaces=["team-a", "team-a-batch"]
        ),
    )
    binding = services.create_binding(actor=admin_user, role=role, user=developer, project=project)
    reconcile_rbac(registered_cluster)
    return {"cluster": registered_cluster, "user": developer, "role": role, "project": project, "binding": binding}


def rbac(sandbox):
    return client.RbacAuthorizationV1Api(sandbox.api_client)


def custom(sandbox):
    return client.CustomObjectsApi(sandbox.api_client)


def test_projection_creates_owned_objects(sandbox, setup):
    user, binding = setup["user"], setup["binding"]
    account = client.CoreV1Api(sandbox.api_client).read_namespaced_service_account(
        f"kubemate-u{user.pk}", "kubemate-system"
    )
    assert account.metadata.owner_references[0].kind == "PlatformUser"

    cluster_role = rbac(sandbox).read_cluster_role("kubemate:developer")
    assert cluster_role.metadata.owner_references[0].kind == "PlatformRole"
    assert any("deployments/scale" in (r.resources or []) for r in cluster_role.rules)

    for namespace in ("team-a", "team-a-batch"):
        role_binding = rbac(sandbox).read_namespaced_role_binding(binding.k8s_name, namespace)
        assert role_binding.role_ref.name == "kubemate:developer"
        assert [s.name for s in role_binding.subjects] == [f"kubemate-u{user.pk}"]
        assert [(o.kind, o.name) for o in role_binding.metadata.owner_references] == [
            ("PlatformBinding", binding.k8s_name)
        ]
    assert rbac(sandbox).list_namespaced_role_binding("team-b", label_selector=MANAGED).items == []

    platform_user = custom(sandbox).get_cluster_custom_object(
        "kubemate.io", "v1alpha1", "platformusers", f"kubemate-u{user.pk}"
    )
    assert platform_user["spec"]["username"] == user.username


def test_reconcile_is_idempotent(setup):
    before = AuditEvent.objects.count()
    report = reconcile_rbac(setup["cluster"])
    assert report.drift == [] and report.removed == []
    assert AuditEvent.objects.count() == before


def test_hand_edited_and_deleted_bindings_are_repaired_and_audited(sandbox, setup):
    name = setup["binding"].k8s_name
    rbac(sandbox).patch_namespaced_role_binding(
        name, "team-a", {"subjects": [{"kind": "ServiceAccount", "name": "intruder", "namespace": "default"}]}
    )
    rbac(sandbox).delete_namespaced_role_binding(name, "team-a-batch")

    report = reconcile_rbac(setup["cluster"])

    assert sorted(report.drift) == [
        f"RoleBinding team-a-batch/{name} was deleted by hand",
        f"RoleBinding team-a/{name} was changed by hand",
    ]
    subjects = rbac(sandbox).read_namespaced_role_binding(name, "team-a").subjects
    assert [s.name for s in subjects] == [f"kubemate-u{setup['user'].pk}"]
    assert rbac(sandbox).read_namespaced_role_binding(name, "team-a-batch").role_ref.name == "kubemate:developer"
    assert AuditEvent.objects.filter(action="accounts.rbac.drift_repaired").count() == 2


def test_a_stale_managed_binding_is_removed(sandbox, setup):
    rbac(sandbox).create_namespaced_role_binding(
        "team-b",
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="kubemate-b999999", labels={"kubemate.io/managed": "true"}),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="kubemate:viewer"
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="kubemate-u1", namespace="kubemate-system")],
        ),
    )
    report = reconcile_rbac(setup["cluster"])
    assert "RoleBinding team-b/kubemate-b999999" in report.removed
    assert rbac(sandbox).list_namespaced_role_binding("team-b", label_selector=MANAGED).items == []


def test_removing_a_role_leaves_no_binding_behind(sandbox, setup, admin_user):
    role = services.save_role(
        actor=admin_user,
        role=Role(slug="release-manager", name_en="RM", name_zh="发布", capabilities=["releases.deploy"]),
    )
    services.create_binding(actor=admin_user, role=role, user=setup["user"], project=setup["project"])
    services.create_binding(actor=admin_user, role=role, user=setup["user"], cluster=setup["cluster"])
    reconcile_rbac(setup["cluster"])
    assert rbac(sandbox).read_cluster_role("kubemate:release-manager")

    services.delete_role(actor=admin_user, role=role)
    reconcile_rbac(setup["cluster"])

    refs = [
        b
        for b in rbac(sandbox).list_role_binding_for_all_namespaces(label_selector=MANAGED).items
        if b.role_ref.name == "kubemate:release-manager"
    ]
    cluster_refs = [
        b
        for b in rbac(sandbox).list_cluster_role_binding(label_selector=MANAGED).items
        if b.role_ref.name == "kubemate:release-manager"
    ]
    roles = [r.metadata.name for r in rbac(sandbox).list_cluster_role(label_selector=MANAGED).items]
    assert refs == [] and cluster_refs == []
    assert "kubemate:release-manager" not in roles


def test_removing_a_user_leaves_no_account_or_binding_behind(sandbox, setup, admin_user):
    user = setup["user"]
    services.delete_user(actor=admin_user, user=user)
    reconcile_rbac(setup["cluster"])

    accounts = [
        a.metadata.name
        for a in client.CoreV1Api(sandbox.api_client)
        .list_namespaced_service_account("kubemate-system", label_selector=MANAGED)
        .items
    ]
    assert f"kubemate-u{user.pk}" not in accounts
    everything = (
        rbac(sandbox).list_role_binding_for_all_namespaces(label_selector=MANAGED).items
        + rbac(sandbox).list_cluster_role_binding(label_selector=MANAGED).items
    )
    assert not any(s.name == f"kubemate-u{user.pk}" for b in everything for s in (b.subjects or []))
    assert not any(b.metadata.name == setup["binding"].k8s_name for b in everything)


def test_deleting_a_custom_resource_garbage_collects_what_it_owns(sandbox, setup):
    name = setup["binding"].k8s_name
    custom(sandbox).delete_cluster_custom_object("kubemate.io", "v1alpha1", "platformbindings", name)
    deadline = time.monotonic() + 30
    remaining = ["?"]
    while remaining and time.monotonic() < deadline:
        remaining = [
            b
            for b in rbac(sandbox).list_role_binding_for_all_namespaces(label_selector=MANAGED).items
            if b.metadata.name == name
        ]
        time.sleep(0.5)
    assert remaining == []


def test_the_console_identity_cannot_act_as_anyone_outside_kubemate_system(sandbox, setup):
    """Kubemate may impersonate only its managed ServiceAccounts, not users or other accounts."""
    from apps.clusters import kube

    with kube.client(setup["cluster"]) as k:
        k._api.set_default_header("Impersonate-User", "system:admin")  # a forged header on Kubemate's own client
        with pytest.raises(kube.Forbidden):
            k.list("Namespace")
    with kube.client(setup["cluster"], as_user=setup["user"]) as k:
        _status, review = k.post(
            "SelfSubjectReview", body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
    assert review["status"]["userInfo"]["username"] == impersonated_username(setup["user"])
