"""access.q filters in the database exactly as may() answers row by row, for every kind of user.

The lists (releases, deployable projects, inventory rows) filter with access.q; may() is the answer the
buttons and views give for one object. Here both are asked about the same rows and must agree.
"""

import pytest
from django.contrib.auth.models import Group

from apps.accounts import access
from apps.accounts.models import Binding, Project, Role
from apps.clusters.models import Resource
from apps.releases.models import Release
from tests.factories import AdminFactory, ClusterFactory, ResourceFactory, UserFactory
from tests.helpers import grant

pytestmark = pytest.mark.django_db
CODES = ("workloads.view", "releases.deploy", "releases.canary", "nodes.view", "secrets.view_metadata")


@pytest.fixture
def world():
    """Two clusters, three projects (one sharing a namespace name across clusters), releases and inventory rows."""
    prod, test = ClusterFactory(name="prod"), ClusterFactory(name="test")
    payments = Project.objects.create(cluster=prod, slug="pay", name="Payments", namespaces=["payments", "cards"])
    erp = Project.objects.create(cluster=prod, slug="erp", name="ERP", namespaces=["erp"])
    test_payments = Project.objects.create(cluster=test, slug="pay", name="Payments", namespaces=["payments"])
    for project in (payments, erp, test_payments):
        for namespace in project.namespaces:
            Release.objects.create(project=project, namespace=namespace, name="api")
    for cluster in (prod, test):
        for namespace in ("payments", "cards", "erp", "kube-system"):
            ResourceFactory(cluster=cluster, kind="Pod", namespace=namespace)
            ResourceFactory(cluster=cluster, kind="Secret", namespace=namespace)
        ResourceFactory(cluster=cluster, kind="Node", namespace="")
    return {"prod": prod, "test": test, "payments": payments, "erp": erp, "test_payments": test_payments}


def users(world):
    """A project member (direct and through a group), a cluster operator, a platform viewer, a superuser, nobody."""
    project_user = UserFactory(username="project-dev")
    grant(project_user, "developer", project=world["payments"])
    team = Group.objects.create(name="erp-team")
    team.user_set.add(project_user)
    Binding.objects.create(
        group=team, role=Role.objects.get(slug="viewer"), scope=Binding.Scope.PROJECT, project=world["erp"]
    )
    cluster_user = UserFactory(username="cluster-admin")
    grant(cluster_user, "cluster-admin", cluster=world["test"])
    grant(cluster_user, "project-owner", project=world["payments"])
    platform_user = UserFactory(username="platform-viewer")
    grant(platform_user, "viewer")
    return {
        "project": project_user,
        "cluster": cluster_user,
        "platform": platform_user,
        "superuser": AdminFactory(),
        "nobody": UserFactory(username="nobody"),
    }


def test_release_lists_match_may_for_every_user_and_capability(world):
    rows = list(Release.objects.select_related("project__cluster"))
    for kind, user in users(world).items():
        for code in CODES:
            expected = {r.pk for r in rows if access.may(user, code, cluster=r.project.cluster, namespace=r.namespace)}
            where = access.q(user, code, cluster="project__cluster", namespace="namespace")
            assert set(Release.objects.filter(where).values_list("pk", flat=True)) == expected, (kind, code)


def test_project_lists_match_may_on_any_of_their_namespaces(world):
    projects = list(Project.objects.select_related("cluster"))
    for kind, user in users(world).items():
        for code in CODES:
            expected = {
                p.pk
                for p in projects
                if any(access.may(user, code, cluster=p.cluster, namespace=n) for n in p.namespaces)
            }
            where = access.q(user, code, cluster="cluster", namespace="namespaces__overlap")
            assert set(Project.objects.filter(where).values_list("pk", flat=True)) == expected, (kind, code)


def test_inventory_rows_match_may_and_the_per_cluster_filter(world):
    rows = list(Resource.objects.select_related("cluster"))
    for kind, user in users(world).items():
        for code in CODES:
            expected = {r.pk for r in rows if access.may(user, code, cluster=r.cluster, namespace=r.namespace or None)}
            found = set(Resource.objects.filter(access.q(user, code)).values_list("pk", flat=True))
            assert found == expected, (kind, code)
        for cluster in (world["prod"], world["test"]):
            for resource_kind in ("Pod", "Secret", "Node"):
                code = access.capability_for(resource_kind)
                expected = {
                    r.pk
                    for r in rows
                    if r.cluster_id == cluster.pk
                    and r.kind == resource_kind
                    and access.may(user, code, cluster=cluster, namespace=r.namespace or None)
                }
                found = set(access.resources(user, cluster, resource_kind).values_list("pk", flat=True))
                assert found == expected, (kind, cluster.name, resource_kind)


def test_the_filters_are_not_trivially_all_or_nothing(world):
    people = users(world)
    releases = access.q(people["project"], "releases.deploy", cluster="project__cluster")
    assert sorted(Release.objects.filter(releases).values_list("namespace", flat=True)) == ["cards", "payments"]
    viewer = access.q(people["project"], "workloads.view", cluster="project__cluster")
    assert sorted(Release.objects.filter(viewer).values_list("namespace", flat=True)) == ["cards", "erp", "payments"]
    operator = access.q(people["cluster"], "nodes.view")
    assert list(Resource.objects.filter(operator, kind="Node").values_list("cluster__name", flat=True)) == ["test"]
    assert (
        Release.objects.filter(access.q(people["platform"], "workloads.view", cluster="project__cluster")).count() == 4
    )
    assert not Release.objects.filter(access.q(people["nobody"], "workloads.view", cluster="project__cluster")).exists()
    assert not Release.objects.filter(
        access.q(people["platform"], "releases.deploy", cluster="project__cluster")
    ).exists()


def test_fetch_and_authorize_answers_404_for_missing_and_forbidden_alike(world):
    from django.http import Http404

    from apps.releases import access as release_access

    people = users(world)
    mine = Release.objects.get(project=world["payments"], namespace="payments")
    theirs = Release.objects.get(project=world["erp"])
    assert release_access.release(people["project"], mine.pk, "releases.deploy") == mine
    for pk in (theirs.pk, 0):
        with pytest.raises(Http404):
            release_access.release(people["project"], pk, "releases.deploy")
    assert access.cluster(people["project"], world["prod"].pk) == world["prod"]
    with pytest.raises(Http404):
        access.cluster(people["project"], world["test"].pk)
