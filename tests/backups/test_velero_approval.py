"""Four-eyes approval of Velero restores (issue 20), against the real Velero server: a project person's restore
into their production namespace waits as a change request with the objects it would create, its maker cannot
approve it, another person's approval starts it as the maker, and an object created by hand in the meantime makes
the request stale. A restore into a namespace outside the project is not held back by the project's policy."""

from __future__ import annotations

import pytest
from django.urls import reverse
from kubernetes import client as k8s_client

from apps.accounts.capabilities import CHANGES_APPROVE
from apps.accounts.models import Project, Role
from apps.backups import tasks
from apps.backups.models import Backup, Restore
from apps.backups.velero import services as velero
from apps.compliance.approvals import services as approvals
from apps.compliance.models import ApprovalPolicy, ChangeRequest
from apps.core import gates
from apps.core.models import AuditEvent
from tests.backups.test_velero import app_namespace, velero_cluster  # noqa: F401 (fixtures)
from tests.factories import UserFactory
from tests.helpers import bind, delete_namespace, grant, login, unique, wait_for

pytestmark = pytest.mark.django_db
CONFIG = "payments-config"


def _config_map(sandbox, namespace: str):
    core = k8s_client.CoreV1Api(sandbox.api_client)
    found = core.list_namespaced_config_map(namespace, field_selector=f"metadata.name={CONFIG}").items
    return found[0] if found else None


def _delete_config_map(sandbox, namespace: str) -> None:
    k8s_client.CoreV1Api(sandbox.api_client).delete_namespaced_config_map(CONFIG, namespace)
    wait_for(lambda: _config_map(sandbox, namespace) is None, timeout=30)


@pytest.fixture
def checker():
    person = UserFactory()
    role = Role.objects.create(slug=unique("approver"), name_en="a", name_zh="a", capabilities=[CHANGES_APPROVE])
    grant(person, role.slug)
    return person


def test_a_project_restore_waits_for_a_second_person_and_is_started_as_its_maker(
    sandbox,
    velero_cluster,  # noqa: F811
    app_namespace,  # noqa: F811
    admin_user,
    checker,
    client,
):
    owner = UserFactory()
    bind(admin_user, velero_cluster, owner, "project-owner", [app_namespace])
    owner = type(owner).objects.get(pk=owner.pk)
    project = Project.objects.get(cluster=velero_cluster, namespaces__contains=[app_namespace])
    backup = velero.run_backup(actor=owner, cluster=velero_cluster, namespaces=[app_namespace], ttl_hours=24)
    tasks.follow_velero(str(backup.job_id), "backup", backup.pk)
    backup.refresh_from_db()
    assert backup.status == Backup.Status.SUCCEEDED, backup.message
    ApprovalPolicy.objects.create(name="Payments restores", project=project, actions=["backups.restore"])
    _delete_config_map(sandbox, app_namespace)

    # From the restore page, with a change ticket: the maker lands on the change request.
    url = reverse("backups:velero_restore", args=[velero_cluster.pk, backup.name])
    page = login(client, owner, recent_auth=True).post(
        url, {"namespace": app_namespace, "ticket": "CHG-88", "reason": "fee-rates lost"}, follow=True
    )

    cr = ChangeRequest.objects.get()
    assert page.redirect_chain[-1][0] == reverse("compliance:change_detail", args=[cr.pk])
    assert f"change request #{cr.pk}" in page.content.decode()
    assert (cr.ticket, cr.reason) == ("CHG-88", "fee-rates lost")
    assert (cr.status, cr.action, cr.maker, cr.cluster) == ("pending", "backups.restore", owner, velero_cluster)
    assert cr.scope["namespaces"] == [app_namespace]
    recorded = {(m["kind"], m["to"]): m["exists"] for m in cr.manifests}
    assert recorded[("v1/ConfigMap", f"{app_namespace}/{CONFIG}")] is False  # what the restore creates
    assert recorded[("apps/v1/Deployment", f"{app_namespace}/payments")] is True  # left as it is
    assert f"+ v1/ConfigMap {app_namespace}/{CONFIG}" in cr.diff
    assert not Restore.objects.exists() and _config_map(sandbox, app_namespace) is None  # nothing restored yet

    with pytest.raises(approvals.DecisionRefused):
        approvals.approve(actor=owner, pk=cr.pk)
    approvals.approve(actor=checker, pk=cr.pk, comment="incident 77")

    cr.refresh_from_db()
    assert cr.status == ChangeRequest.Status.APPLIED, cr.outcome
    restore = Restore.objects.get()
    assert restore.actor == owner and restore.backup_name == backup.name  # started as the maker
    tasks.follow_velero(str(restore.job_id), "restore", restore.pk)
    restore.refresh_from_db()
    assert restore.status == Restore.Status.SUCCEEDED, restore.message
    assert _config_map(sandbox, app_namespace).data == {"mode": "live"}
    assert AuditEvent.objects.get(action="backups.restore.start", object_name=restore.name).actor_id == owner.pk

    # A second request, then the ConfigMap made by hand before anyone approves: the restore would now create less
    # than the checker read, so approving refuses it with the reason and starts nothing.
    _delete_config_map(sandbox, app_namespace)
    with pytest.raises(gates.ApprovalRequired) as again:
        velero.restore(
            actor=owner, cluster=velero_cluster, backup_name=backup.name, namespaces=[app_namespace], mapping={}
        )
    k8s_client.CoreV1Api(sandbox.api_client).create_namespaced_config_map(
        app_namespace, {"metadata": {"name": CONFIG}, "data": {"mode": "by-hand"}}
    )
    with pytest.raises(approvals.DecisionRefused, match="differs from what was approved"):
        approvals.approve(actor=checker, pk=again.value.request_id)
    assert ChangeRequest.objects.get(pk=again.value.request_id).status == ChangeRequest.Status.STALE
    assert Restore.objects.count() == 1


def test_the_projects_policy_does_not_hold_a_restore_into_a_namespace_outside_it(
    sandbox,
    velero_cluster,  # noqa: F811
    app_namespace,  # noqa: F811
    admin_user,
):
    bind(admin_user, velero_cluster, UserFactory(), "project-owner", [app_namespace])
    project = Project.objects.get(cluster=velero_cluster, namespaces__contains=[app_namespace])
    ApprovalPolicy.objects.create(name="Payments restores", project=project, actions=["backups.restore"])
    backup = velero.run_backup(actor=admin_user, cluster=velero_cluster, namespaces=[app_namespace], ttl_hours=24)
    tasks.follow_velero(str(backup.job_id), "backup", backup.pk)
    copy_namespace = unique("copy")
    try:
        restore = velero.restore(
            actor=admin_user,
            cluster=velero_cluster,
            backup_name=Backup.objects.get(pk=backup.pk).name,
            namespaces=[app_namespace],
            mapping={app_namespace: copy_namespace},
        )
        assert restore.pk and not ChangeRequest.objects.exists()
        # Into the project's own namespace, the same backup waits for approval.
        with pytest.raises(gates.ApprovalRequired):
            velero.restore(
                actor=admin_user,
                cluster=velero_cluster,
                backup_name=restore.backup_name,
                namespaces=[app_namespace],
                mapping={},
            )
        tasks.follow_velero(str(restore.job_id), "restore", restore.pk)
    finally:
        delete_namespace(sandbox, copy_namespace)
