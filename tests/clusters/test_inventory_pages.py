"""Inventory pages (home, overview, lists, details) read from Resource/SyncState rows built by factories.

No test here needs Kubernetes: the pages never call a cluster, which these tests also prove by
registering clusters whose API server address points nowhere.
"""

import pytest
from django.test import Client
from django.urls import reverse

from apps.clusters.inventory import lists
from apps.clusters.inventory.summaries import row_fields
from apps.clusters.models import Resource, SyncState
from tests.clusters.inventory_rows import detail_url, list_url, meta, metrics, pod_obj, synced
from tests.factories import AdminFactory, ClusterFactory, UserFactory
from tests.helpers import grant, login

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin():
    return AdminFactory()


# Anonymous, no permission, permitted ----------------------------------------------------------------


def page_urls(bank):
    cluster = bank["cluster"]
    return [
        reverse("clusters:cluster_overview", args=[cluster.pk]),
        list_url(cluster, "pods"),
        list_url(cluster, "nodes"),
        detail_url(bank["deployment"]),
        detail_url(Resource.objects.get(kind="Node", name="node-1")),
    ]


def test_anonymous_users_are_sent_to_sign_in(bank):
    for url in [reverse("clusters:cluster_list"), *page_urls(bank)]:
        response = Client().get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))


def test_a_user_without_any_binding_gets_404_for_every_cluster_page_and_sees_no_card(bank):
    stranger = login(Client(), UserFactory())
    for url in page_urls(bank):
        assert stranger.get(url).status_code == 404
    html = stranger.get(reverse("clusters:cluster_list")).content.decode()
    assert 'data-testid="no-clusters"' in html
    assert "prod-sh" not in html


def test_a_user_bound_to_another_cluster_gets_404_here(bank):
    other = ClusterFactory(name="dr-bj")
    user = UserFactory()
    grant(user, "cluster-admin", cluster=other)
    browser = login(Client(), user)
    for url in page_urls(bank):
        assert browser.get(url).status_code == 404
    assert browser.get(reverse("clusters:cluster_overview", args=[other.pk])).status_code == 200


def test_a_platform_administrator_opens_every_page(bank, admin):
    browser = login(Client(), admin)
    for url in [reverse("clusters:cluster_list"), *page_urls(bank)]:
        assert browser.get(url).status_code == 200


# Home ---------------------------------------------------------------------------------------------------


def test_home_shows_one_card_per_cluster_with_nodes_pods_warnings_and_freshness(bank, admin):
    quiet = ClusterFactory(name="dr-bj", environment="dr")
    synced(quiet, seconds_ago=300, state=SyncState.State.DISCONNECTED, message="the API server is unreachable")

    html = login(Client(), admin).get(reverse("clusters:cluster_list")).content.decode()

    assert html.count('data-testid="cluster-card"') == 2
    card = html.split('data-cluster="prod-sh"')[1].split('data-testid="cluster-card"')[0]
    assert "production" in card and "shanghai-1" in card
    assert '2<span class="text-secondary fs-4"> / 3</span>' in card  # node-3 is ready but cordoned
    assert 'data-testid="pods-total">4<' in card
    for word, count in (("CrashLoopBackOff", 1), ("Running", 2), ("Pending", 1)):
        assert f'data-word="{word}">{word}</span> {count}' in card
    assert 'data-testid="warnings">2<' in card
    assert "Last synced 12 s ago" in card
    dr = html.split('data-cluster="dr-bj"')[1]
    assert "Not synced for 5 minutes: the API server is unreachable" in dr


def test_home_never_calls_a_cluster_and_answers_when_nothing_was_synced(admin):
    ClusterFactory(name="new-one")
    html = login(Client(), admin).get(reverse("clusters:cluster_list")).content.decode()
    assert "Not synced yet" in html


def test_home_offers_registration_only_to_cluster_managers(bank, admin):
    viewer = UserFactory()
    grant(viewer, "viewer", cluster=bank["cluster"])
    managed = login(Client(), admin).get(reverse("clusters:cluster_list")).content.decode()
    viewed = login(Client(), viewer).get(reverse("clusters:cluster_list")).content.decode()
    assert 'data-testid="cluster-register"' in managed and 'data-testid="cluster-settings"' in managed
    assert 'data-testid="cluster-register"' not in viewed and 'data-testid="cluster-settings"' not in viewed


def test_home_partial_for_polling(bank, admin, django_assert_max_num_queries):
    browser = login(Client(), admin)
    with django_assert_max_num_queries(8):
        response = browser.get(reverse("clusters:cluster_list"), HTTP_HX_REQUEST="true", HTTP_X_KUBEMATE_POLL="1")
    html = response.content.decode()
    assert html.lstrip().startswith('<div class="row row-cards" id="cluster-cards"')
    assert "<html" not in html


# Overview -----------------------------------------------------------------------------------------------


def test_overview_shows_health_capacity_requests_and_what_needs_attention(bank, admin):
    cluster = bank["cluster"]
    html = login(Client(), admin).get(reverse("clusters:cluster_overview", args=[cluster.pk])).content.decode()

    assert "2 of 3 nodes ready" in html
    assert "4 pods" in html
    assert "2 warning events" in html
    # Requests: the four running or waiting pods ask for 250m and 256Mi each: 1 core and 1 GiB of 24 cores, 96 GiB.
    assert 'data-testid="cpu-requests">1 core (4%)' in html
    assert 'data-testid="memory-requests">1.0 GiB (1%)' in html
    assert "usage not available" in html
    attention = html.split("What needs attention")[1].split("Warning events")[0]
    for name, reason in [
        ("loan-api-55d-x", "keeps crashing"),
        ("batch-1", "has been waiting to start"),
        ("loan-api", "has 0 of 2 replicas ready"),
        ("node-2", "is not ready"),
        ("node-3", "is cordoned"),
    ]:
        assert name in attention and reason in attention
    assert "pay-api-7c9f-a" not in attention
    events = html.split("Warning events")[1]
    assert events.index("Back-off restarting failed container loan") >= 0
    assert "Scaled up" not in events
    assert 'id="capacity-data"' in html and "vendor/echarts/echarts.min.js" in html


def test_overview_uses_node_metrics_for_usage_when_synced(bank, admin):
    cluster = bank["cluster"]
    metrics(cluster, "NodeMetrics", "node-1", cpu=6000, memory=12 * 2**30)
    metrics(cluster, "NodeMetrics", "node-2", cpu=0, memory=0)
    html = login(Client(), admin).get(reverse("clusters:cluster_overview", args=[cluster.pk])).content.decode()
    assert 'data-testid="cpu-usage">6 cores (25%)' in html
    assert 'data-testid="memory-usage">12.0 GiB (12%)' in html


def test_overview_poll_answers_the_live_partial_without_capacity(bank, admin, django_assert_max_num_queries):
    cluster = bank["cluster"]
    browser = login(Client(), admin)
    with django_assert_max_num_queries(12):
        response = browser.get(
            reverse("clusters:cluster_overview", args=[cluster.pk]), HTTP_HX_REQUEST="true", HTTP_X_KUBEMATE_POLL="1"
        )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="overview-live"')
    assert "capacity-data" not in html
    assert "loan-api-55d-x" in html


def test_overview_of_a_cluster_that_stopped_syncing_warns_but_still_answers(bank, admin):
    cluster = bank["cluster"]
    synced(cluster, seconds_ago=600, state=SyncState.State.DISCONNECTED, message="the API server is unreachable")
    response = login(Client(), admin).get(reverse("clusters:cluster_overview", args=[cluster.pk]))
    assert response.status_code == 200
    assert "Not synced for 10 minutes: the API server is unreachable" in response.content.decode()


# Lists --------------------------------------------------------------------------------------------------


def test_pod_list_shows_columns_from_the_summary(bank, admin, django_assert_max_num_queries):
    browser = login(Client(), admin)
    with django_assert_max_num_queries(12):
        html = browser.get(list_url(bank["cluster"], "pods")).content.decode()
    assert html.count('data-testid="resource-row"') == 4
    row = html.split('data-name="loan-api-55d-x"')[1].split("</tr>")[0]
    assert "CrashLoopBackOff" in row and "0/1" in row and ">7<" in row and "node-1" in row and "lending" in row


def test_list_search_label_status_namespace_and_project_filters(bank, admin):
    cluster = bank["cluster"]
    browser = login(Client(), admin)

    def names(query):
        html = browser.get(list_url(cluster, "pods", query)).content.decode()
        return sorted(part.split('"')[0] for part in html.split('data-testid="resource-row" data-name="')[1:])

    assert names("q=7C9F") == ["pay-api-7c9f-a", "pay-api-7c9f-b"]
    assert names("labels=app%3Dloan-api") == ["loan-api-55d-x"]
    assert names("labels=app") == ["loan-api-55d-x", "pay-api-7c9f-a", "pay-api-7c9f-b"]
    assert names("labels=!app") == ["batch-1"]
    assert names("labels=app!%3Dpay-api") == ["batch-1", "loan-api-55d-x"]
    assert names("status=Pending") == ["batch-1"]
    assert names("namespace=payments") == ["pay-api-7c9f-a", "pay-api-7c9f-b"]
    assert names(f"project={bank['lending'].pk}") == ["batch-1", "loan-api-55d-x"]
    assert names("q=pay&namespace=lending") == []


def test_a_malformed_label_selector_is_explained(bank, admin):
    html = login(Client(), admin).get(list_url(bank["cluster"], "pods", "labels=app%3D%3D%3Dx%20y")).content.decode()
    assert 'data-testid="filter-error"' in html
    assert "is not a label selector" in html


def test_list_sorts_by_name_namespace_status_and_age(bank, admin):
    cluster = bank["cluster"]
    browser = login(Client(), admin)

    def first(query):
        html = browser.get(list_url(cluster, "pods", query)).content.decode()
        return html.split('data-testid="resource-row" data-name="')[1].split('"')[0]

    assert first("sort=name") == "batch-1"
    assert first("sort=-name") == "pay-api-7c9f-b"
    assert first("sort=status") == "loan-api-55d-x"
    assert first("sort=-namespace") == "pay-api-7c9f-b"
    assert first("sort=-age") == "batch-1"


def test_list_paginates_fifty_a_page(admin):
    cluster = ClusterFactory(name="big")
    Resource.objects.bulk_create(
        Resource(cluster=cluster, **row_fields("ConfigMap", {"metadata": meta(f"cm-{i:03d}", "apps")}))
        for i in range(120)
    )
    browser = login(Client(), admin)
    html = browser.get(list_url(cluster, "configmaps", "page=3")).content.decode()
    assert html.count('data-testid="resource-row"') == 20
    assert "101–120 of 120" in html
    assert "cm-100" in html and "cm-099" not in html
    assert "Page 3 of 3" in html


def test_htmx_filter_request_answers_the_table_partial_with_a_poll_every_10s(bank, admin):
    html = (
        login(Client(), admin).get(list_url(bank["cluster"], "pods", "q=loan"), HTTP_HX_REQUEST="true").content.decode()
    )
    assert html.lstrip().startswith('<div class="card" id="resource-table"')
    assert 'hx-trigger="every 10s"' in html and '"X-Kubemate-Poll": "1"' in html
    assert "q=loan" in html.split("hx-get=")[1].split(">")[0]
    assert "<html" not in html


def test_history_restore_gets_the_whole_page(bank, admin):
    html = (
        login(Client(), admin)
        .get(list_url(bank["cluster"], "pods"), HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
        .content.decode()
    )
    assert "<html" in html


def test_every_kind_has_a_list_page(bank, admin):
    browser = login(Client(), admin)
    for slug in lists.BY_SLUG:
        assert browser.get(list_url(bank["cluster"], slug)).status_code == 200, slug


def test_an_unknown_kind_is_404(bank, admin):
    assert login(Client(), admin).get(f"/clusters/{bank['cluster'].pk}/widgets/").status_code == 404


# Details ------------------------------------------------------------------------------------------------


def test_deployment_detail_shows_replicasets_pods_services_routes_hpa_and_events(bank, admin):
    html = login(Client(), admin).get(detail_url(bank["deployment"])).content.decode()

    def section(key):
        return html.split(f'data-section="{key}"')[1].split("data-section=")[0]

    assert "pay-api-7c9f" in section("replicasets")
    assert "pay-api-7c9f-a" in section("pods") and "pay-api-7c9f-b" in section("pods")
    assert 'data-name="pay-api"' in section("services") and 'data-name="other"' not in section("services")
    assert 'data-name="pay"' in section("routes")
    assert 'data-name="pay-api"' in section("hpas")
    assert "Scaled up" in section("events") and "Readiness probe failed" not in section("events")
    assert 'id="resource-actions-result"' in html
    assert 'data-testid="conditions"' in html and "MinimumReplicasAvailable" in html


def test_pod_detail_shows_owner_node_containers_usage_and_events(bank, admin):
    target = bank["pods"][0]
    metrics(bank["cluster"], "PodMetrics", target.name, "payments", cpu=120, memory=200 * 2**20)
    html = login(Client(), admin).get(detail_url(target)).content.decode()
    assert 'data-testid="owner"' in html and "pay-api-7c9f" in html.split('data-testid="owner"')[1][:400]
    assert 'data-testid="node-link"' in html
    assert "registry.bank.local/app:1.4.2" in html and 'data-testid="container-row"' in html
    assert "cpu 250m" in html
    assert "0.12 cores" in html and "200.0 MiB" in html
    assert "Readiness probe failed" in html


def test_node_detail_lists_its_pods_and_cluster_scoped_path(bank, admin):
    node_row = Resource.objects.get(kind="Node", name="node-1")
    html = login(Client(), admin).get(detail_url(node_row)).content.decode()
    pods = html.split('data-section="pods"')[1].split("data-section=")[0]
    assert pods.count('data-testid="related-row"') == 3
    assert "usage not available" in html
    namespaced_path = reverse("clusters:resource_detail", args=[node_row.cluster_id, "nodes", "default", "node-1"])
    assert login(Client(), admin).get(namespaced_path).status_code == 404


def test_service_detail_lists_endpoint_slices_pods_and_routes(bank, admin):
    html = login(Client(), admin).get(detail_url(bank["service"])).content.decode()
    assert "pay-api-x1" in html.split('data-section="endpointslices"')[1]
    assert html.split('data-section="pods"')[1].split("data-section=")[0].count("related-row") == 2
    assert 'data-name="pay"' in html.split('data-section="routes"')[1]


def test_secret_detail_shows_key_names_never_values(bank, admin):
    html = (
        login(Client(), admin).get(detail_url(Resource.objects.get(kind="Secret", name="db-password"))).content.decode()
    )
    assert "password" in html.split('data-testid="secret-keys"')[1]
    assert "c2VjcmV0" not in html


def test_namespace_detail_counts_what_runs_in_it(bank, admin):
    html = (
        login(Client(), admin).get(detail_url(Resource.objects.get(kind="Namespace", name="payments"))).content.decode()
    )
    contents = html.split('data-testid="namespace-contents"')[1].split("</div>\n    </div>")[0]
    assert "Deployments" in contents and "/pods/?namespace=payments" in contents
    assert '<span class="ms-auto badge bg-secondary-lt">2</span>' in contents


def test_a_missing_object_is_404(bank, admin):
    url = reverse("clusters:resource_detail", args=[bank["cluster"].pk, "pods", "payments", "nope"])
    assert login(Client(), admin).get(url).status_code == 404


# Speed with a large inventory ---------------------------------------------------------------------------


def bulk_pods(cluster, count):
    labels = ({"app": f"svc-{i % 300}", "tier": "web" if i % 2 else "db"} for i in range(count))
    states = ["Running"] * 17 + ["Pending", "Succeeded", "Failed"]
    rows = []
    for i, label in enumerate(labels):
        obj = pod_obj(
            f"pod-{i:05d}",
            f"team-{i % 40}",
            labels=label,
            node=f"node-{i % 50}",
            phase=states[i % len(states)],
            waiting="CrashLoopBackOff" if i % 97 == 0 else None,
        )
        obj["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "x" * 1500}
        rows.append(Resource(cluster=cluster, **row_fields("Pod", obj)))
    Resource.objects.bulk_create(rows, batch_size=2000)
    Resource.objects.bulk_create(
        Resource(cluster=cluster, **row_fields("Node", node_obj))
        for node_obj in (
            {
                "metadata": meta(f"node-{i}"),
                "status": {
                    "allocatable": {"cpu": "16", "memory": "64Gi"},
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
            for i in range(50)
        )
    )


@pytest.fixture
def large_cluster(db):
    cluster = ClusterFactory(name="large")
    bulk_pods(cluster, 15_000)
    synced(cluster)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE clusters_resource")
    return cluster


def test_pod_list_at_15000_pods_keeps_its_query_count(large_cluster, admin, django_assert_max_num_queries):
    """Speed itself is measured by bench/inventory; here the page stays a fixed handful of queries at scale."""
    browser = login(Client(), admin)
    for query in ("", "q=pod-1234", "labels=tier%3Dweb&sort=-age", "status=Pending&page=7", "sort=name&page=200"):
        with django_assert_max_num_queries(12):
            response = browser.get(list_url(large_cluster, "pods", query))
        assert response.status_code == 200, query
        assert response.content.decode().count('data-testid="resource-row"') <= 50, query
    with django_assert_max_num_queries(12):
        partial = browser.get(list_url(large_cluster, "pods"), HTTP_HX_REQUEST="true", HTTP_X_KUBEMATE_POLL="1")
    assert "<html" not in partial.content.decode()


def test_overview_at_15000_pods_sums_requests_in_few_queries(large_cluster, admin, django_assert_max_num_queries):
    browser = login(Client(), admin)
    url = reverse("clusters:cluster_overview", args=[large_cluster.pk])
    with django_assert_max_num_queries(16):
        html = browser.get(url).content.decode()
    # Every pod that has not finished asks for 250m; the 50 nodes offer 800 cores.
    waiting_or_running = Resource.objects.filter(cluster=large_cluster, kind="Pod").exclude(
        status__in=["Succeeded", "Failed"]
    )
    cores = waiting_or_running.count() // 4
    assert f'data-testid="cpu-requests">{cores} cores ({round(100 * cores / 800)}%)' in html
