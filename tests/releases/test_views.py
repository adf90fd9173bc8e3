"""Release pages: anonymous users sign in, others meet 404 for releases outside their grants, members see theirs."""

import uuid

import pytest
from django.urls import reverse

from apps.accounts import services as account_services
from apps.accounts.models import Project, Role
from apps.releases import render
from apps.releases.models import Canary, Release, Revision
from tests.factories import ResourceFactory, UserFactory
from tests.helpers import login
from tests.releases.helpers import form_data, member

pytestmark = pytest.mark.django_db

# (url name, needs a release, method)
VIEWS = [
    ("releases:release_create", False, "get"),
    ("releases:release_create", False, "post"),
    ("releases:release_preview", False, "post"),
    ("releases:release_detail", True, "get"),
    ("releases:release_edit", True, "get"),
    ("releases:release_edit", True, "post"),
    ("releases:release_edit_preview", True, "post"),
    ("releases:release_deploy", True, "post"),
    ("releases:release_rollback", True, "post"),
    ("releases:release_diff", True, "get"),
    ("releases:release_delete", True, "post"),
]


def url_of(name, release, needs_release):
    return reverse(name, args=[release.pk]) if needs_release else reverse(name)


@pytest.mark.parametrize(("name", "needs_release", "method"), VIEWS)
def test_anonymous_is_sent_to_sign_in(client, release, name, needs_release, method):
    response = getattr(client, method)(url_of(name, release, needs_release))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(("name", "needs_release", "method"), VIEWS)
def test_a_user_without_the_capability_gets_404(client, release, name, needs_release, method):
    response = getattr(login(client, UserFactory(), recent_auth=True), method)(url_of(name, release, needs_release))
    assert response.status_code == 404


@pytest.mark.parametrize(
    "name", ["releases:release_edit", "releases:release_deploy", "releases:release_delete", "releases:release_rollback"]
)
def test_a_viewer_sees_the_release_but_may_not_change_it(client, release, name):
    viewer = member(release, "viewer")
    login(client, viewer, recent_auth=True)
    assert client.get(reverse("releases:release_detail", args=[release.pk])).status_code == 200
    assert client.post(reverse(name, args=[release.pk]), {"revision": 1}).status_code == 404


def test_the_list_shows_only_releases_the_user_may_see_in_bounded_queries(
    client, release, django_assert_max_num_queries
):
    other = Project.objects.create(cluster=release.project.cluster, slug="hr", name="HR", namespaces=["hr"])
    Release.objects.create(project=other, namespace="hr", name="hr-portal", spec=release.spec)
    login(client, member(release))

    with django_assert_max_num_queries(10):
        response = client.get(reverse("releases:release_list"))

    page = response.content.decode()
    assert response.status_code == 200
    assert "payments-api" in page and "hr-portal" not in page
    assert 'data-testid="release-create"' in page


def test_the_list_shows_a_running_canary_and_its_automatic_steps(client, release):
    Canary.objects.create(
        release=release,
        spec={**release.spec, "image": "registry.bank.example/payments-api:2.0.0"},
        weight=25,
        analysis=Canary.Analysis.RUNNING,
        analysis_query="vector(0)",
    )
    Canary.objects.create(release=release, spec=release.spec, weight=10, state=Canary.State.ABORTED)

    page = login(client, member(release)).get(reverse("releases:release_list")).content.decode()

    cell = page.split('data-testid="release-canary"')[1].split("</td>")[0]
    assert "25%" in cell and "payments-api:2.0.0" in cell and "Automatic steps running" in cell


def test_a_user_without_releases_sees_an_empty_list_in_words(client, release):
    response = login(client, UserFactory()).get(reverse("releases:release_list"))
    page = response.content.decode()
    assert "payments-api" not in page and "No releases you can see yet." in page
    assert 'data-testid="release-create"' not in page


def test_the_detail_page_offers_deploy_and_rollback_to_a_developer(client, release):
    Revision.objects.create(release=release, number=2, spec=release.spec, spec_hash="y")
    response = login(client, member(release)).get(reverse("releases:release_detail", args=[release.pk]))
    page = response.content.decode()
    assert 'data-testid="release-edit"' in page and 'data-testid="rollback-1"' in page


def test_the_form_preview_renders_the_manifests_as_yaml(client, release):
    login(client, member(release))
    data = form_data(
        project=release.project.pk,
        namespace="payments",
        name="checkout",
        secret_env="API_KEY=topsecret",
        route_enabled="on",
        route_hostname="pay.bank.example",
        gateway_name="public",
        gateway_namespace="gateways",
        hpa_enabled="on",
        hpa_min=2,
        hpa_max=6,
        hpa_cpu_percent=60,
    )

    response = client.post(reverse("releases:release_preview"), data, HTTP_HX_REQUEST="true")

    page = response.content.decode()
    assert 'data-testid="manifest-preview"' in page and "<form" not in page
    for text in (
        "kind: Deployment",
        "kind: Service",
        "kind: HTTPRoute",
        "kind: HorizontalPodAutoscaler",
        "kind: Secret",
    ):
        assert text in page
    assert "API_KEY: &#x27;********&#x27;" in page
    assert "topsecret" not in page
    assert "kubemate.io/release: checkout" in page and "averageUtilization: 60" in page


def test_the_preview_lists_what_to_fix_in_plain_words(client, release):
    login(client, member(release))
    data = form_data(project=release.project.pk, namespace="payments", name="Bad_Name", memory_request="12 gigs")

    page = client.post(reverse("releases:release_preview"), data, HTTP_HX_REQUEST="true").content.decode()

    assert "Fix these first:" in page
    assert "“12 gigs” is not a memory size. Write 512Mi or 2Gi." in page
    assert "“Bad_Name” is not a valid name" in page


def test_a_namespace_outside_the_project_is_refused(client, release):
    user = member(release)
    login(client, user)
    data = form_data(project=release.project.pk, namespace="kube-system", name="checkout")
    page = client.post(reverse("releases:release_create"), data).content.decode()
    assert "kube-system is not a namespace of a project you may deploy to: choose one from the list." in page
    assert not Release.objects.filter(name="checkout").exists()
    # A namespace of another project the user may deploy to, under this project, is refused too.
    other = Project.objects.create(cluster=release.project.cluster, slug="shop", name="Shop", namespaces=["shop"])
    account_services.create_binding(actor=None, role=Role.objects.get(slug="developer"), user=user, project=other)
    data = form_data(project=release.project.pk, namespace="shop", name="checkout")
    page = client.post(reverse("releases:release_create"), data).content.decode()
    assert "Choose one of the project&#x27;s namespaces: payments." in page
    assert 'data-filter-by="field-project"' in page and '<optgroup label="Shop">' in page


def test_a_deployment_page_links_to_the_release_that_manages_it(client, release, admin_user):
    cluster = release.project.cluster
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "payments-api",
            "namespace": "payments",
            "uid": str(uuid.uuid4()),
            "labels": render.labels("payments-api"),
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"replicas": 2},
        "status": {},
    }
    ResourceFactory(cluster=cluster, kind="Deployment", namespace="payments", obj=obj)

    response = login(client, admin_user).get(
        reverse("clusters:resource_detail", args=[cluster.pk, "deployments", "payments", "payments-api"])
    )

    page = response.content.decode()
    assert 'data-testid="managed-by-release"' in page and "Managed by release payments-api" in page
    assert reverse("releases:release_detail", args=[release.pk]) in page


def test_the_autoscaler_card_shows_current_and_desired_replicas_from_the_inventory(client, release):
    release.spec["autoscaling"] = {"enabled": True, "min": 2, "max": 6, "cpu_percent": 70, "memory_percent": None}
    release.save()
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "payments-api", "namespace": "payments", "uid": str(uuid.uuid4())},
        "spec": {
            "minReplicas": 2,
            "maxReplicas": 6,
            "scaleTargetRef": {"name": "payments-api"},
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"averageUtilization": 70}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"averageUtilization": 80}}},
            ],
        },
        "status": {
            "currentReplicas": 3,
            "desiredReplicas": 4,
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 92}}},
            ],
        },
    }
    ResourceFactory(cluster=release.project.cluster, kind="HorizontalPodAutoscaler", namespace="payments", obj=hpa)

    page = login(client, member(release)).get(reverse("releases:release_detail", args=[release.pk])).content.decode()

    assert 'data-testid="hpa-current">3<' in page and 'data-testid="hpa-desired">4<' in page
    cpu = page.split('data-metric="cpu"')[1].split('data-testid="hpa-metric"')[0]
    memory = page.split('data-metric="memory"')[1]
    assert "<strong>92%</strong>" in cpu and "target 70%" in cpu and "bg-orange" in cpu
    assert "no reading yet" in memory and "target 80%" in memory


def test_the_new_release_form_opens_with_sensible_defaults(client, release):
    response = login(client, member(release)).get(reverse("releases:release_create"))
    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="memory_limit" id="id_memory_limit" value="256Mi"' in page
    assert 'name="ports" id="id_ports" value="8080"' in page
    assert '<optgroup label="Payments">' in page and '<option value="payments">payments</option>' in page


def test_without_a_project_the_empty_list_says_what_to_do_first(admin_client_):
    html = admin_client_.get(reverse("releases:release_list")).content.decode()
    assert 'data-testid="release-needs-project"' in html
    assert reverse("accounts:project_create") in html
