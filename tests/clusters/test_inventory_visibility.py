"""A user bound to one project sees that project's objects and nothing of another project, on every page.

The fixture cluster (see tests/clusters/inventory_rows.build_bank) has a "payments" project (healthy pay-api) and a
"lending" project (a crashing pod, a degraded deployment, a stuck pod, a warning event), plus nodes.
The member of payments must never meet a lending object: not in lists, filtered lists, htmx partials,
details, overview counts or the home cards.
"""

import pytest
from django.test import Client
from django.urls import reverse

from apps.clusters.models import Resource
from tests.clusters.inventory_rows import detail_url, list_url
from tests.factories import ClusterFactory, UserFactory
from tests.helpers import grant, login

pytestmark = pytest.mark.django_db
LENDING_NAMES = ("loan-api", "loan-api-55d-x", "batch-1", "loan-db", "Back-off restarting failed container loan")


@pytest.fixture
def member(bank):
    user = UserFactory(username="pat")
    grant(user, "project-owner", project=bank["payments"])
    return login(Client(), user)


def assert_no_lending(html: str) -> None:
    leaked = [name for name in LENDING_NAMES if name in html]
    assert leaked == []


def row_names(html: str) -> list[str]:
    return sorted(part.split('"')[0] for part in html.split('data-testid="resource-row" data-name="')[1:])


def test_home_card_counts_only_the_project(bank, member):
    ClusterFactory(name="dr-bj")
    html = member.get(reverse("clusters:cluster_list")).content.decode()

    assert html.count('data-testid="cluster-card"') == 1
    assert "dr-bj" not in html
    assert 'data-testid="pods-total">2<' in html
    assert 'data-testid="warnings">1<' in html
    assert 'data-testid="nodes-ready"' not in html
    assert "CrashLoopBackOff" not in html and "Pending" not in html


def test_home_poll_partial_counts_only_the_project(bank, member):
    html = member.get(
        reverse("clusters:cluster_list"), HTTP_HX_REQUEST="true", HTTP_X_KUBEMATE_POLL="1"
    ).content.decode()
    assert 'data-testid="pods-total">2<' in html
    assert "CrashLoopBackOff" not in html


def test_overview_counts_attention_events_and_requests_only_in_the_project(bank, member):
    html = member.get(reverse("clusters:cluster_overview", args=[bank["cluster"].pk])).content.decode()

    assert "2 pods" in html
    assert "1 warning event" in html
    assert "0 things need attention" in html
    assert "Your role does not include nodes." in html
    assert 'data-testid="cpu-requests">0.5 cores' in html
    assert 'data-testid="memory-requests">512.0 MiB' in html
    assert "node-2" not in html and "node-3" not in html
    assert_no_lending(html)


def test_overview_live_partial_shows_only_the_project(bank, member):
    html = member.get(
        reverse("clusters:cluster_overview", args=[bank["cluster"].pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "2 pods" in html
    assert_no_lending(html)


def test_lists_show_only_project_objects(bank, member):
    cluster = bank["cluster"]
    pods = member.get(list_url(cluster, "pods")).content.decode()
    assert row_names(pods) == ["pay-api-7c9f-a", "pay-api-7c9f-b"]
    assert_no_lending(pods)
    assert row_names(member.get(list_url(cluster, "deployments")).content.decode()) == ["pay-api"]
    assert row_names(member.get(list_url(cluster, "secrets")).content.decode()) == ["db-password"]
    assert row_names(member.get(list_url(cluster, "namespaces")).content.decode()) == ["payments"]
    events = member.get(list_url(cluster, "events")).content.decode()
    assert_no_lending(events)
    assert "Readiness probe failed" in events


def test_filter_choices_offer_only_the_project(bank, member):
    html = member.get(list_url(bank["cluster"], "pods")).content.decode()
    namespace_select = html.split('id="filter-namespace"')[1].split("</select>")[0]
    assert 'value="payments"' in namespace_select and "lending" not in namespace_select
    project_select = html.split('id="filter-project"')[1].split("</select>")[0]
    assert "Payments" in project_select and "Lending" not in project_select
    status_select = html.split('id="filter-status"')[1].split("</select>")[0]
    assert "CrashLoopBackOff" not in status_select and "Pending" not in status_select


def test_filtered_lists_never_reach_into_another_project(bank, member):
    cluster = bank["cluster"]
    payments_pods = ["pay-api-7c9f-a", "pay-api-7c9f-b"]
    for query, expected in (
        ("namespace=lending", []),
        (f"project={bank['lending'].pk}", []),
        ("q=loan", []),
        ("labels=app%3Dloan-api", []),
        ("status=CrashLoopBackOff", []),
        ("status=Pending", []),
        ("labels=!app", []),
        ("sort=status", payments_pods),
        ("q=pay", payments_pods),
    ):
        html = member.get(list_url(cluster, "pods", query)).content.decode()
        # The form and the refresh links repeat what was typed; the table rows must hold nothing of lending.
        table = html.split("<tbody>")[1].split("</tbody>")[0]
        assert_no_lending(table)
        assert row_names(table) == expected, query


def test_htmx_table_partial_and_poll_never_reach_into_another_project(bank, member):
    cluster = bank["cluster"]
    for query in ("", "namespace=lending", "q=loan", f"project={bank['lending'].pk}"):
        html = member.get(
            list_url(cluster, "pods", query), HTTP_HX_REQUEST="true", HTTP_X_KUBEMATE_POLL="1"
        ).content.decode()
        assert html.lstrip().startswith('<div class="card" id="resource-table"')
        assert_no_lending(html)


def test_cluster_scoped_kinds_are_404_for_a_project_member(bank, member):
    cluster = bank["cluster"]
    for slug in ("nodes", "persistentvolumes", "storageclasses"):
        assert member.get(list_url(cluster, slug)).status_code == 404
    assert member.get(detail_url(Resource.objects.get(kind="Node", name="node-1"))).status_code == 404


def test_details_outside_the_project_are_404(bank, member):
    for resource in (bank["loan"], bank["crashing"], bank["stuck"], Resource.objects.get(name="loan-db")):
        assert member.get(detail_url(resource)).status_code == 404
    assert member.get(detail_url(Resource.objects.get(kind="Namespace", name="lending"))).status_code == 404
    assert member.get(detail_url(bank["deployment"])).status_code == 200
    assert member.get(detail_url(Resource.objects.get(name="db-password"))).status_code == 200


def test_details_in_the_project_do_not_link_what_the_member_may_not_see(bank, member):
    html = member.get(detail_url(bank["pods"][0])).content.decode()
    assert 'data-testid="node-link"' not in html
    assert "/nodes/" not in html
    assert_no_lending(member.get(detail_url(bank["deployment"])).content.decode())


def test_the_cluster_menu_lists_only_kinds_the_member_may_open(bank, member):
    html = member.get(reverse("clusters:cluster_overview", args=[bank["cluster"].pk])).content.decode()
    menu = html.split('data-testid="kind-nav"')[1].split("</nav>")[0]
    assert "/pods/" in menu and "/secrets/" in menu
    assert "/nodes/" not in menu and "/persistentvolumes/" not in menu and "/storageclasses/" not in menu


def test_a_role_without_secrets_metadata_sees_no_secret(bank):
    developer = UserFactory(username="dev")
    grant(developer, "developer", project=bank["payments"])
    browser = login(Client(), developer)
    assert browser.get(list_url(bank["cluster"], "secrets")).status_code == 404
    assert browser.get(detail_url(Resource.objects.get(name="db-password"))).status_code == 404
    assert browser.get(list_url(bank["cluster"], "pods")).status_code == 200


def test_a_cluster_viewer_sees_every_namespace_and_the_nodes_but_no_secret(bank):
    viewer = UserFactory(username="vic")
    grant(viewer, "viewer", cluster=bank["cluster"])
    browser = login(Client(), viewer)
    pods = browser.get(list_url(bank["cluster"], "pods")).content.decode()
    assert row_names(pods) == ["batch-1", "loan-api-55d-x", "pay-api-7c9f-a", "pay-api-7c9f-b"]
    assert browser.get(list_url(bank["cluster"], "nodes")).status_code == 200
    assert browser.get(list_url(bank["cluster"], "secrets")).status_code == 404
    overview = browser.get(reverse("clusters:cluster_overview", args=[bank["cluster"].pk])).content.decode()
    assert "2 of 3 nodes ready" in overview and "loan-api-55d-x" in overview


def test_a_member_of_another_clusters_project_gets_404_here(bank):
    other = ClusterFactory(name="dr-bj")
    from apps.accounts.models import Project

    project = Project.objects.create(cluster=other, slug="payments", name="Payments DR", namespaces=["payments"])
    user = UserFactory(username="dora")
    grant(user, "project-owner", project=project)
    browser = login(Client(), user)
    assert browser.get(reverse("clusters:cluster_overview", args=[bank["cluster"].pk])).status_code == 404
    assert browser.get(list_url(bank["cluster"], "pods")).status_code == 404
    assert browser.get(detail_url(bank["deployment"])).status_code == 404
    assert "prod-sh" not in browser.get(reverse("clusters:cluster_list")).content.decode()
