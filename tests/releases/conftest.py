import pytest
from django.urls import reverse
from kubernetes import client as k8s

from apps.accounts.models import Project
from apps.core.models import Job
from apps.releases.models import Release
from tests.factories import ClusterFactory, UserFactory
from tests.helpers import bind, create_namespace, delete_namespace, login, unique
from tests.releases.helpers import ROUTE, form_data, release_in, roll_out


@pytest.fixture
def release(db):
    """payments-api in a project of a cluster that is never called, with one succeeded revision."""
    cluster = ClusterFactory()
    return release_in(Project.objects.create(cluster=cluster, slug="pay", name="Payments", namespaces=["payments"]))


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


@pytest.fixture
def deployed(client, team):
    """payments-api deployed with a route and rolled out, its owner signed in."""
    data = form_data(project=team["project"].pk, namespace=team["namespace"], name="payments-api", **ROUTE)
    login(client, team["user"]).post(reverse("releases:release_create"), data)
    release = Release.objects.get(name="payments-api")
    assert roll_out(release.revisions.get()).status == Job.Status.SUCCEEDED
    return release
