import pytest
from kubernetes import client as k8s

from apps.accounts.models import Project
from tests.clusters.test_actions import bind, create_namespace, delete_namespace, unique
from tests.factories import UserFactory


@pytest.fixture
def team(sandbox, registered_cluster, admin_user):
    """A project namespace with a project owner allowed to deploy there (RBAC projected into the sandbox)."""
    namespace = unique("h9-rel")
    create_namespace(sandbox, namespace)
    owner = UserFactory()
    bind(admin_user, registered_cluster, owner, "project-owner", [namespace])
    project = Project.objects.get(namespaces__contains=[namespace])
    yield {"cluster": registered_cluster, "namespace": namespace, "user": owner, "project": project}
    delete_namespace(sandbox, namespace)


@pytest.fixture
def apps_api(sandbox):
    return k8s.AppsV1Api(sandbox.api_client)


@pytest.fixture
def core_api(sandbox):
    return k8s.CoreV1Api(sandbox.api_client)
