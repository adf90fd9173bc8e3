"""List rows carry the same actions as the detail page's buttons, behind the same capabilities (issue: the
operator's day, item 7), and a page of an object a release manages says to change it through the release."""

import pytest
from django.test import Client
from django.urls import reverse

from apps.releases.models import Release
from apps.releases.render import RELEASE_LABEL
from tests.clusters.inventory_rows import build_bank, deployment
from tests.factories import UserFactory
from tests.helpers import grant, login

pytestmark = pytest.mark.django_db


def row_actions(html: str, name: str) -> set[str]:
    row = html.split(f'data-name="{name}"')[1].split("</tr>")[0]
    cell = row.split('data-testid="row-actions"')[1]
    return {part.split('"')[0] for part in cell.split('data-testid="row-')[1:]}


def test_pod_and_deployment_rows_offer_what_the_user_may_do():
    bank = build_bank()
    cluster = bank["cluster"]
    owner, viewer = UserFactory(), UserFactory()
    grant(owner, "project-owner", project=bank["payments"])
    grant(viewer, "viewer", project=bank["payments"])
    pods = reverse("clusters:resource_list", args=[cluster.pk, "pods"])
    deployments = reverse("clusters:resource_list", args=[cluster.pk, "deployments"])

    owner_pods = login(Client(), owner).get(pods).content.decode()
    assert row_actions(owner_pods, "pay-api-7c9f-a") == {"logs", "terminal", "delete", "yaml"}
    owner_deployments = login(Client(), owner).get(deployments).content.decode()
    assert row_actions(owner_deployments, "pay-api") == {"scale", "restart", "yaml", "yaml-edit"}
    assert 'hx-confirm="Restart pay-api? Its pods are replaced one by one."' in owner_deployments

    viewer_pods = login(Client(), viewer).get(pods).content.decode()
    assert row_actions(viewer_pods, "pay-api-7c9f-a") == {"yaml"}


def test_an_object_a_release_manages_says_to_change_it_through_the_release():
    bank = build_bank()
    cluster = bank["cluster"]
    owner = UserFactory()
    grant(owner, "project-owner", project=bank["payments"])
    Release.objects.create(project=bank["payments"], namespace="payments", name="checkout", spec={})
    deployment(cluster, "checkout", "payments", labels={RELEASE_LABEL: "checkout"})
    client = login(Client(), owner)

    managed = client.get(reverse("clusters:resource_detail", args=[cluster.pk, "deployments", "payments", "checkout"]))
    plain = client.get(reverse("clusters:resource_detail", args=[cluster.pk, "deployments", "payments", "pay-api"]))

    assert 'data-testid="managed-warning"' in managed.content.decode()
    assert "Release checkout manages this object" in managed.content.decode()
    assert 'data-testid="managed-warning"' not in plain.content.decode()


def test_logs_are_one_click_from_a_release_and_breadcrumbs_lead_back():
    from tests.clusters.inventory_rows import pod

    bank = build_bank()
    cluster = bank["cluster"]
    owner = UserFactory()
    grant(owner, "project-owner", project=bank["payments"])
    release = Release.objects.create(project=bank["payments"], namespace="payments", name="checkout", spec={})
    pod(cluster, "checkout-5d8-x", "payments", labels={RELEASE_LABEL: "checkout"})
    page = login(Client(), owner).get(reverse("releases:release_detail", args=[release.pk])).content.decode()
    logs = reverse("clusters:pod_logs", args=[cluster.pk, "payments", "checkout-5d8-x"])
    assert 'data-testid="release-pods"' in page and f'href="{logs}"' in page
    assert "pay-api-7c9f-a" not in page.split('data-testid="release-pods"')[1].split("</dd>")[0]


def test_the_events_list_leads_with_the_object_and_marks_warnings():
    bank = build_bank()
    cluster = bank["cluster"]
    owner = UserFactory()
    grant(owner, "project-owner", project=bank["payments"])
    html = login(Client(), owner).get(reverse("clusters:resource_list", args=[cluster.pk, "events"])).content.decode()
    rows = html.split('data-testid="resource-row"')[1:]
    warning = next(row for row in rows if "Unhealthy" in row)
    normal = next(row for row in rows if "ScalingReplicaSet" in row)
    pod_url = reverse("clusters:resource_detail", args=[cluster.pk, "pods", "payments", "pay-api-7c9f-a"])
    assert 'class="table-warning"' in warning.split(">")[0] and 'class="table-warning"' not in normal.split(">")[0]
    first_cell = warning.split('data-testid="event-object"')[1].split("</td>")[0]
    assert f'href="{pod_url}"' in first_cell and "Pod pay-api-7c9f-a" in first_cell
    assert warning.index("Unhealthy") < warning.index("Readiness probe failed")  # reason, then message


def test_a_config_map_page_shows_its_data_and_a_secret_page_only_its_keys():
    from tests.clusters.inventory_rows import add, meta

    bank = build_bank()
    cluster = bank["cluster"]
    owner = UserFactory()
    grant(owner, "project-owner", project=bank["payments"])
    add(
        cluster,
        "ConfigMap",
        {"metadata": meta("pay-config", "payments"), "data": {"LOG_LEVEL": "info", "app.yaml": "port: 8080\n"}},
    )
    client = login(Client(), owner)
    page = client.get(reverse("clusters:resource_detail", args=[cluster.pk, "configmaps", "payments", "pay-config"]))
    body = page.content.decode()
    assert 'data-testid="config-data"' in body
    assert 'data-key="LOG_LEVEL"' in body and ">info</pre>" in body and "port: 8080" in body
    secret = client.get(reverse("clusters:resource_detail", args=[cluster.pk, "secrets", "payments", "db-password"]))
    assert 'data-testid="config-data"' not in secret.content.decode()


def test_the_nodes_list_shows_use_as_bars_against_allocatable():
    from tests.clusters.inventory_rows import metrics
    from tests.factories import AdminFactory

    bank = build_bank()
    cluster = bank["cluster"]
    metrics(cluster, "NodeMetrics", "node-1", cpu=6000, memory=8 * 2**30)  # of 8 cores and 32 GiB
    html = login(Client(), AdminFactory()).get(reverse("clusters:resource_list", args=[cluster.pk, "nodes"]))
    body = html.content.decode()
    one = body.split('data-name="node-1"')[1].split("</tr>")[0]
    two = body.split('data-name="node-2"')[1].split("</tr>")[0]
    assert 'data-percent="75"' in one and 'data-percent="25"' in one and "bg-orange" in one
    assert "no metrics yet" in two


def test_every_node_action_that_changes_scheduling_asks_first():
    from apps.clusters.actions.registry import ACTIONS

    changing = [a for a in ACTIONS.values() if a.widget == "post"]
    assert changing and all(a.confirm for a in changing), [a.name for a in changing if not a.confirm]


def test_each_namespace_gets_its_own_actions_and_each_node_its_own_state():
    """Actions are decided once per namespace on a list page: one person, two roles in two namespaces, one page."""
    bank = build_bank()
    cluster = bank["cluster"]
    person = UserFactory()
    grant(person, "project-owner", project=bank["payments"])
    grant(person, "viewer", project=bank["lending"])
    pods = login(Client(), person).get(reverse("clusters:resource_list", args=[cluster.pk, "pods"])).content.decode()
    assert row_actions(pods, "pay-api-7c9f-a") == {"logs", "terminal", "delete", "yaml"}
    assert row_actions(pods, "loan-api-55d-x") == {"yaml"}
    assert row_actions(pods, "pay-api-7c9f-b") == {"logs", "terminal", "delete", "yaml"}

    # Cordon or uncordon follows each node's own state, though the decision to allow them is made once.
    admin = UserFactory(is_superuser=True)
    nodes = login(Client(), admin).get(reverse("clusters:resource_list", args=[cluster.pk, "nodes"])).content.decode()
    assert {"cordon", "drain"} <= row_actions(nodes, "node-1") and "uncordon" not in row_actions(nodes, "node-1")
    assert "uncordon" in row_actions(nodes, "node-3") and "cordon" not in row_actions(nodes, "node-3")


@pytest.mark.parametrize("needs_password", [True, False])
def test_a_row_button_is_what_its_template_renders_with_the_rows_values(rf, needs_password):
    """The cell fills stand-ins in a button rendered once; it must equal rendering the template for that row,
    escaping included."""
    from django.template.loader import render_to_string

    from apps.clusters.actions.registry import ACTIONS, Button
    from apps.clusters.inventory.pages import row_actions as cells_module

    request = rf.get("/")
    request.user = UserFactory(is_superuser=True)
    cells = cells_module.ActionCells(request, build_bank()["cluster"], "Pod")
    cells._password = needs_password
    url = "/clusters/1/pods/a&b/\"x'<y>/delete/"
    row_url = "/clusters/1/pods/ns/<p>&q/"
    for action in (ACTIONS["delete"], ACTIONS["logs"], ACTIONS["scale"], ACTIONS["restart"]):
        for confirm in ('Delete "a" & <b>\'s pod?', ""):
            button = Button(action, url, confirm)
            expected = render_to_string(
                cells_module.TEMPLATE,
                {
                    "action": action,
                    "url": url,
                    "row_url": row_url,
                    "confirm": confirm,
                    "needs_password": needs_password,
                },
            ).strip()
            assert str(cells.cell([button], row_url)) == expected
    # The values were escaped where they went in, and a stand-in never reaches the page.
    html = str(cells.cell([Button(ACTIONS["delete"], url, "Delete <b>?")], row_url))
    assert "&lt;y&gt;" in html and "Delete &lt;b&gt;?" in html and "\x00" not in html
    assert ("data-confirm-password" in html) is needs_password


def test_the_status_menu_offers_the_statuses_the_person_may_see():
    from apps.clusters.inventory.lists import status_choices

    bank = build_bank()
    cluster = bank["cluster"]
    admin, payments = UserFactory(is_superuser=True), UserFactory()
    grant(payments, "viewer", project=bank["payments"])
    assert status_choices(admin, cluster, "Pod") == ["CrashLoopBackOff", "Pending", "Running"]
    assert status_choices(payments, cluster, "Pod") == ["Running"]
    assert status_choices(admin, cluster, "ConfigMap") == []
    assert status_choices(UserFactory(), cluster, "Pod") == []
