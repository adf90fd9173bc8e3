import pytest
from kubernetes import client as k8s

from apps.accounts import services as account_services
from apps.accounts.models import Project, Role
from apps.accounts.reconcile import reconcile_rbac
from tests.factories import UserFactory
from tests.helpers import bind, create_namespace, delete_namespace, unique


@pytest.fixture
def gpu_team(sandbox, registered_cluster, admin_user):
    """A project namespace in the sandbox with a project owner (ai.serve and releases.deploy) and a developer
    (releases.deploy, no ai.serve), RBAC projected; and a volume of a storage class of the test's own, so the
    claim a server creates binds (the sandbox has no provisioner) and the scheduler places its pod."""
    namespace = unique("ai-srv")
    create_namespace(sandbox, namespace)
    owner, developer = UserFactory(), UserFactory()
    bind(admin_user, registered_cluster, owner, "project-owner", [namespace])
    project = Project.objects.get(namespaces__contains=[namespace])
    account_services.create_binding(
        actor=admin_user, role=Role.objects.get(slug="developer"), user=developer, project=project
    )
    reconcile_rbac(registered_cluster)
    storage_class = unique("models")
    core = k8s.CoreV1Api(sandbox.api_client)
    core.create_persistent_volume(
        k8s.V1PersistentVolume(
            metadata=k8s.V1ObjectMeta(name=storage_class),
            spec=k8s.V1PersistentVolumeSpec(
                capacity={"storage": "20Gi"},
                access_modes=["ReadWriteOnce"],
                storage_class_name=storage_class,
                host_path=k8s.V1HostPathVolumeSource(path=f"/tmp/{storage_class}"),
            ),
        )
    )
    yield {
        "cluster": registered_cluster,
        "namespace": namespace,
        "project": project,
        "owner": owner,
        "developer": developer,
        "storage_class": storage_class,
    }
    delete_namespace(sandbox, namespace)
    core.delete_persistent_volume(storage_class)
