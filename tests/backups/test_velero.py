"""Velero from the console against the real Velero server (run out of cluster on the sandbox, its storage location
on versitygw): a namespace's Deployment, ConfigMap and Secret backed up, the namespace deleted, restored from the
console and compared field by field; a project's people limited to their namespaces."""

from __future__ import annotations

import contextlib
import copy

import pytest
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from apps.accounts.reconcile import reconcile_rbac
from apps.backups import tasks
from apps.backups.models import Backup, Restore
from apps.backups.services import Refused, set_velero_namespace
from apps.backups.velero import services as velero
from apps.core.audit import AuditEvent, verify
from tests.factories import UserFactory
from tests.helpers import bind, create_namespace, delete_namespace, deployment, unique, wait_for

pytestmark = pytest.mark.django_db

SERVER_SET = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "selfLink")
VELERO_LABELS = ("velero.io/backup-name", "velero.io/restore-name")


def comparable(obj) -> dict:
    """``obj`` without status and what the server sets (and the labels Velero adds to what it restores)."""
    found = copy.deepcopy(k8s_client.ApiClient().sanitize_for_serialization(obj))
    found.pop("status", None)
    meta = found.get("metadata") or {}
    for key in SERVER_SET:
        meta.pop(key, None)
    for key in VELERO_LABELS:
        (meta.get("labels") or {}).pop(key, None)
    (meta.get("annotations") or {}).pop("deployment.kubernetes.io/revision", None)
    if not meta.get("labels"):
        meta.pop("labels", None)
    if not meta.get("annotations"):
        meta.pop("annotations", None)
    return found


@pytest.fixture
def velero_cluster(registered_cluster, velero, admin_user):
    set_velero_namespace(actor=admin_user, cluster=registered_cluster, namespace=velero.namespace)
    registered_cluster.refresh_from_db()
    reconcile_rbac(registered_cluster)  # what the reconcile queued after the change does in a worker
    return registered_cluster


@pytest.fixture
def app_namespace(sandbox):
    name = unique("bk")
    create_namespace(sandbox, name)
    core = k8s_client.CoreV1Api(sandbox.api_client)
    apps = k8s_client.AppsV1Api(sandbox.api_client)
    apps.create_namespaced_deployment(name, deployment("payments", replicas=2))
    core.create_namespaced_config_map(
        name, {"metadata": {"name": "payments-config", "labels": {"app": "payments"}}, "data": {"mode": "live"}}
    )
    core.create_namespaced_secret(
        name, {"metadata": {"name": "payments-db"}, "type": "Opaque", "stringData": {"password": "s3cr3t"}}
    )
    yield name
    with contextlib.suppress(ApiException):
        delete_namespace(sandbox, name)


def _objects(sandbox, namespace: str) -> dict:
    core = k8s_client.CoreV1Api(sandbox.api_client)
    apps = k8s_client.AppsV1Api(sandbox.api_client)
    return {
        "deployment": comparable(apps.read_namespaced_deployment("payments", namespace)),
        "configmap": comparable(core.read_namespaced_config_map("payments-config", namespace)),
        "secret": comparable(core.read_namespaced_secret("payments-db", namespace)),
    }


def _gone(sandbox, namespace: str) -> bool:
    try:
        k8s_client.CoreV1Api(sandbox.api_client).read_namespace(namespace)
    except ApiException as exc:
        return exc.status == 404
    return False


def test_a_backup_restored_from_the_console_brings_back_the_same_objects(
    sandbox, velero_cluster, app_namespace, admin_user
):
    before = _objects(sandbox, app_namespace)

    backup = velero.run_backup(actor=admin_user, cluster=velero_cluster, namespaces=[app_namespace], ttl_hours=24)
    tasks.follow_velero(str(backup.job_id), "backup", backup.pk)

    backup.refresh_from_db()
    assert backup.status == Backup.Status.SUCCEEDED, backup.message
    assert backup.detail["items"] >= 3
    delete_namespace(sandbox, app_namespace)
    wait_for(lambda: _gone(sandbox, app_namespace), timeout=60)

    shown = velero.preview(
        actor=admin_user, cluster=velero_cluster, backup_name=backup.name, namespaces=[app_namespace], mapping={}
    )
    planned = {(o["kind"], o["to"]) for o in shown["objects"]}
    assert ("apps/v1/Deployment", f"{app_namespace}/payments") in planned
    assert ("v1/ConfigMap", f"{app_namespace}/payments-config") in planned
    assert ("v1/Secret", f"{app_namespace}/payments-db") in planned
    restore = velero.restore(
        actor=admin_user, cluster=velero_cluster, backup_name=backup.name, namespaces=[app_namespace], mapping={}
    )
    tasks.follow_velero(str(restore.job_id), "restore", restore.pk)

    restore.refresh_from_db()
    assert restore.status == Restore.Status.SUCCEEDED, restore.message
    after = _objects(sandbox, app_namespace)
    assert after == before
    finished = AuditEvent.objects.get(action="backups.restore.finished", object_name=restore.name)
    assert f"apps/v1/Deployment {app_namespace}/payments" in finished.detail["created"]
    assert finished.detail["items_restored"] >= 3
    assert AuditEvent.objects.filter(action="backups.restore.start", object_name=restore.name).exists()
    assert list(verify()) == []


def test_a_restore_into_a_new_namespace_leaves_the_original_alone(sandbox, velero_cluster, app_namespace, admin_user):
    backup = velero.run_backup(actor=admin_user, cluster=velero_cluster, namespaces=[app_namespace], ttl_hours=24)
    tasks.follow_velero(str(backup.job_id), "backup", backup.pk)
    copy_namespace = unique("copy")

    restore = velero.restore(
        actor=admin_user,
        cluster=velero_cluster,
        backup_name=Backup.objects.get(pk=backup.pk).name,
        namespaces=[app_namespace],
        mapping={app_namespace: copy_namespace},
    )
    tasks.follow_velero(str(restore.job_id), "restore", restore.pk)

    try:
        core = k8s_client.CoreV1Api(sandbox.api_client)
        restored = core.read_namespaced_config_map("payments-config", copy_namespace)
        assert restored.data == {"mode": "live"}
        assert core.read_namespaced_config_map("payments-config", app_namespace).data == {"mode": "live"}
    finally:
        delete_namespace(sandbox, copy_namespace)


def test_project_people_back_up_and_restore_their_own_namespaces_only(
    sandbox, velero_cluster, app_namespace, admin_user
):
    other = unique("other")
    create_namespace(sandbox, other)
    try:
        owner = UserFactory()
        bind(admin_user, velero_cluster, owner, "project-owner", [app_namespace])
        owner = type(owner).objects.get(pk=owner.pk)

        with pytest.raises(Refused):
            velero.run_backup(actor=owner, cluster=velero_cluster, namespaces=[other])
        with pytest.raises(Refused):
            velero.run_backup(actor=owner, cluster=velero_cluster, namespaces=[])  # the whole cluster
        backup = velero.run_backup(actor=owner, cluster=velero_cluster, namespaces=[app_namespace], ttl_hours=24)
        tasks.follow_velero(str(backup.job_id), "backup", backup.pk)
        backup.refresh_from_db()
        assert backup.status == Backup.Status.SUCCEEDED, backup.message

        with pytest.raises(Refused):
            velero.preview(
                actor=owner,
                cluster=velero_cluster,
                backup_name=backup.name,
                namespaces=[app_namespace],
                mapping={app_namespace: other},
            )
        shown = velero.preview(
            actor=owner, cluster=velero_cluster, backup_name=backup.name, namespaces=[app_namespace], mapping={}
        )
        # Everything exists: Velero leaves it as it is, and the preview says so.
        exists = {(o["kind"], o["to"]): o["exists"] for o in shown["objects"]}
        assert exists[("apps/v1/Deployment", f"{app_namespace}/payments")] is True
        assert exists[("v1/ConfigMap", f"{app_namespace}/payments-config")] is True
        assert exists[("v1/Secret", f"{app_namespace}/payments-db")] is True
    finally:
        delete_namespace(sandbox, other)
