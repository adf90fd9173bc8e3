"""The dashboard (kubemate/dashboard.py): Kubemate's own services and each cluster the user may see, from inventory.

No cluster is called: the clusters here are rows whose API server address points nowhere, and the cards read
what the inventory sync stored (tests/clusters/inventory_rows.py builds those rows).
"""

import re

import pytest
from django.test import Client
from django.urls import reverse

import kubemate
from apps.clusters.models import SyncState
from tests.clusters.inventory_rows import build_bank, node, synced
from tests.factories import AdminFactory, ClusterFactory, UserFactory
from tests.helpers import grant, login

pytestmark = pytest.mark.django_db


def cluster_facts(html: str) -> dict[str, str]:
    """Each cluster fact on the page by cluster name: the text of its card."""
    cards = html.split('data-testid="cluster-fact"')[1:]
    return {card.split('data-cluster="')[1].split('"')[0]: card for card in cards}


def test_dashboard_sends_anonymous_users_to_login(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_dashboard_shows_live_service_facts(operator_client, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        response = operator_client.get(reverse("dashboard"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="fact-database" data-ok="true"' in html
    assert 'data-testid="fact-redis" data-ok="true"' in html
    # No worker runs in this test, and the dashboard must say so.
    assert 'data-testid="fact-worker" data-ok="false"' in html
    assert kubemate.__version__ in html and kubemate.__version__.count(".") == 2


def test_dashboard_shows_each_visible_cluster_from_the_inventory():
    bank = build_bank()
    bank["cluster"].kubernetes_version = "v1.31.4"
    bank["cluster"].save(update_fields=["kubernetes_version"])
    quiet = ClusterFactory(name="dr-bj", kubernetes_version="v1.30.2")
    node(quiet, "dr-node-1")
    synced(quiet, seconds_ago=300, state=SyncState.State.DISCONNECTED, message="the API server is unreachable")

    html = login(Client(), AdminFactory()).get(reverse("dashboard")).content.decode()

    facts = cluster_facts(html)
    assert sorted(facts) == ["dr-bj", "prod-sh"]
    assert "Kubernetes v1.31.4 · 2 of 3 nodes ready" in facts["prod-sh"]  # node-2 is not ready
    assert re.search(r"Last synced 1[234] s ago", facts["prod-sh"])  # 12 s before the page, which may take a while
    assert 'data-ok="true"' in facts["prod-sh"]
    assert "Kubernetes v1.30.2 · 1 of 1 nodes ready" in facts["dr-bj"]
    assert "Not synced for 5 minutes: the API server is unreachable" in facts["dr-bj"]
    assert 'data-ok="false"' in facts["dr-bj"]
    assert reverse("clusters:cluster_overview", args=[bank["cluster"].pk]) in facts["prod-sh"]


def test_a_user_sees_only_the_clusters_they_hold_a_binding_in():
    bank = build_bank()
    other = ClusterFactory(name="dr-bj")
    synced(other)
    ClusterFactory(name="test-gz")
    member = UserFactory()
    grant(member, "developer", project=bank["payments"])
    grant(member, "viewer", cluster=other)
    stranger = UserFactory()

    member_html = login(Client(), member).get(reverse("dashboard")).content.decode()
    stranger_html = login(Client(), stranger).get(reverse("dashboard")).content.decode()

    assert sorted(cluster_facts(member_html)) == ["dr-bj", "prod-sh"]
    assert "test-gz" not in member_html
    assert cluster_facts(stranger_html) == {}
    assert 'data-testid="no-clusters"' in stranger_html
    assert "prod-sh" not in stranger_html and "dr-bj" not in stranger_html


def test_a_project_member_without_nodes_sees_no_node_count():
    bank = build_bank()
    member = UserFactory()
    grant(member, "developer", project=bank["payments"])  # the developer role does not read nodes

    html = login(Client(), member).get(reverse("dashboard")).content.decode()

    fact = cluster_facts(html)["prod-sh"]
    assert "nodes ready" not in fact
    assert re.search(r"Last synced 1[234] s ago", fact)


def test_a_cluster_the_inventory_has_not_heard_from_says_so():
    ClusterFactory(name="new-one")
    html = login(Client(), AdminFactory()).get(reverse("dashboard")).content.decode()
    fact = cluster_facts(html)["new-one"]
    assert "Not synced yet" in fact
    assert "nodes ready" not in fact


def test_facts_partial_renders_only_the_partial_for_htmx(operator_client):
    html = operator_client.get(reverse("dashboard_facts"), HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<div class="row row-cards" id="facts"')
    assert "<html" not in html


def test_polling_the_facts_costs_the_same_queries_for_many_clusters(django_assert_max_num_queries):
    for name in ("a", "b", "c", "d", "e"):
        synced(ClusterFactory(name=f"prod-{name}"))
    browser = login(Client(), AdminFactory())
    with django_assert_max_num_queries(10):
        response = browser.get(reverse("dashboard_facts"), HTTP_HX_REQUEST="true", HTTP_X_KUBEMATE_POLL="1")
    assert len(cluster_facts(response.content.decode())) == 5


def test_the_dashboard_leads_with_what_is_wrong_where_failed_or_stuck_jobs_and_recent_releases():
    from datetime import timedelta

    from django.utils import timezone

    from apps.core.models import Job
    from apps.releases.models import Revision
    from tests.factories import JobFactory
    from tests.releases.helpers import release_in

    bank = build_bank()
    dr = ClusterFactory(name="dr-bj")
    node(dr, "dr-node-1", ready=False)
    admin = AdminFactory()
    old = timezone.now() - timedelta(minutes=30)
    failed = JobFactory(actor=admin, title="Drain node node-9", status=Job.Status.FAILED, finished_at=timezone.now())
    stuck = JobFactory(actor=admin, title="Roll out web revision 4", status=Job.Status.PENDING, created_at=old)
    JobFactory(actor=admin, title="Finished fine", status=Job.Status.SUCCEEDED, finished_at=timezone.now())
    release = release_in(bank["payments"])
    Revision.objects.create(release=release, number=2, spec=release.spec, spec_hash="y", result="failed", actor=admin)

    html = login(Client(), admin).get(reverse("dashboard")).content.decode()

    problems = html.split('data-testid="problems"')[1].split('data-testid="jobs-to-look-at"')[0]
    assert problems.count('data-testid="problem-row"') >= 4
    assert "loan-api-55d-x" in problems and "CrashLoopBackOff" in problems  # a failing pod in prod-sh
    assert "dr-node-1" in problems and "dr-bj" in problems  # a node not ready in the other cluster
    jobs = html.split('data-testid="jobs-to-look-at"')[1].split('data-testid="recent-releases"')[0]
    assert failed.title in jobs and stuck.title in jobs and "Stuck" in jobs and "Finished fine" not in jobs
    releases = html.split('data-testid="recent-releases"')[1]
    assert "payments-api #2" in releases and "Failed" in releases
    # The plumbing is one small card; no demo button.
    assert 'data-testid="system"' in html and 'data-testid="fact-database"' in html
    assert "demo job" not in html.lower()


def test_a_project_member_sees_only_their_projects_problems():
    bank = build_bank()
    member = UserFactory()
    grant(member, "viewer", project=bank["payments"])
    html = login(Client(), member).get(reverse("dashboard")).content.decode()
    problems = html.split('data-testid="problems"')[1].split('data-testid="jobs-to-look-at"')[0]
    assert "loan-api" not in problems  # lending is not their project
    assert "node-2" not in problems  # nodes are not theirs to see
