"""Shipping an app from the console: deploy it from the release form, release a canary at 10%, promote it."""

import time
import uuid

import pytest
from kubernetes import client
from playwright.sync_api import expect

from apps.accounts.k8s import review_access
from apps.accounts.models import Project
from apps.accounts.reconcile import reconcile_rbac
from apps.core import audit
from apps.core.models import AuditEvent
from apps.releases.models import Canary
from tests.factories import AdminFactory
from tests.helpers import confirm_dialog, sign_in_page
from tests.releases.helpers import check_now

pytestmark = [
    pytest.mark.browser,
    pytest.mark.sandbox,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
OLD = "registry.bank.example/shop-api:1.0.0"
NEW = "registry.bank.example/shop-api:2.0.0"


@pytest.fixture
def shop_namespace(sandbox):
    namespace = f"shop-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(sandbox.api_client).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
    )
    yield namespace
    client.CoreV1Api(sandbox.api_client).delete_namespace(namespace)


def reload_until(page, locator, text: str, timeout: float = 60) -> None:
    """The page is rendered from the inventory: reload until the sync has brought the cluster's change."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in " ".join(locator.all_inner_texts()):
            return
        time.sleep(1)
        page.reload()
    expect(locator.first).to_contain_text(text)


@pytest.fixture
def shop_admin(page, registered_cluster, shop_namespace, inventory_sync):
    """An administrator signed in, with project Shop on the namespace and RBAC projected into the sandbox."""
    inventory_sync(["Namespace", "Deployment", "ReplicaSet", "Pod", "Service", "HTTPRoute", "Event"])
    admin = AdminFactory()
    Project.objects.create(cluster=registered_cluster, slug="shop", name="Shop", namespaces=[shop_namespace])
    reconcile_rbac(registered_cluster)
    for _ in range(60):
        checks = [
            ("create", "apps", "deployments", shop_namespace),
            ("patch", "gateway.networking.k8s.io", "httproutes", shop_namespace),
        ]
        if review_access(registered_cluster, admin, checks) == [True, True]:
            break
        time.sleep(0.5)
    sign_in_page(page, admin)
    return admin


def deploy_from_the_form(page, namespace: str, screenshot=None) -> None:
    page.goto("/releases/new/")
    # Choosing the namespace chooses its project.
    page.select_option("[data-testid=field-namespace]", namespace)
    expect(page.locator("[data-testid=field-project] option:checked")).to_have_text("Shop")
    page.fill("[data-testid=field-name]", "shop-api")
    page.fill("[data-testid=field-image]", OLD)
    page.fill("[data-testid=field-ports]", "80")
    # The probes followed the first container port as it was typed.
    expect(page.locator("[data-testid=field-readiness_port]")).to_have_value("80")
    expect(page.locator("[data-testid=field-liveness_port]")).to_have_value("80")
    page.fill("[data-testid=field-ports]", "8080")
    expect(page.locator("[data-testid=field-readiness_port]")).to_have_value("8080")
    page.check("[data-testid=field-route_enabled]")
    page.fill("[data-testid=field-route_hostname]", "shop.bank.example")
    expect(page.locator("[data-testid=field-gateway_name]")).to_be_hidden()
    page.select_option("[data-testid=field-gateway]", "other")
    page.fill("[data-testid=field-gateway_namespace]", "gateway-system")
    page.fill("[data-testid=field-gateway_name]", "public")
    if screenshot:
        screenshot("release-form")
    page.click("[data-testid=release-form] button[type=submit]")
    confirm_dialog(page)
    expect(page.locator("[data-testid=release-name]")).to_have_text("shop-api")
    expect(page.locator("[data-testid=job-status]")).to_have_attribute("data-status", "succeeded", timeout=90_000)


def test_deploy_from_the_form_release_a_canary_at_10_percent_and_promote_it(
    page, screenshot, shop_admin, shop_namespace, celery_worker_thread
):
    deploy_from_the_form(page, shop_namespace, screenshot)

    reload_until(page, page.locator("[data-track=stable] [data-testid=version-ready]"), "2/2")
    screenshot("release-deployed")

    page.fill("[data-testid=canary-start-form] [data-testid=field-image]", NEW)
    page.fill("[data-testid=canary-start-form] [data-testid=field-weight]", "10")
    page.click("[data-testid=canary-start]")
    confirm_dialog(page)
    expect(page.locator("#messages")).to_contain_text("10% of the traffic")
    reload_until(page, page.locator("[data-track=canary] [data-testid=version-share]"), "10%")
    expect(page.locator("[data-track=stable] [data-testid=version-share]")).to_contain_text("90%")
    # The sandbox's gateway controller (Traefik) accepts the route with its canary's weights.
    route_badge = page.locator("[data-testid=canary-route-status] .badge")
    for _ in range(30):
        if route_badge.inner_text().strip() == "Accepted":
            break
        time.sleep(1)
        page.reload()
    expect(route_badge).to_have_text("Accepted")
    reload_until(page, page.locator("[data-track=canary] [data-testid=version-ready]"), "1/1")
    screenshot("release-canary-10")

    page.click("[data-testid=canary-promote]")
    assert NEW in confirm_dialog(page, reason="CHG-4711 promote")
    expect(page.locator("[data-testid=release-image]")).to_have_text(NEW)
    expect(page.locator("[data-testid=job-status]")).to_have_attribute("data-status", "succeeded", timeout=90_000)
    reload_until(page, page.locator("[data-testid=version-row]"), NEW)
    for _ in range(60):  # the canary's Deployment leaves the inventory once the cluster has deleted it
        if page.locator("[data-testid=version-row]").count() == 1:
            break
        time.sleep(1)
        page.reload()
    expect(page.locator("[data-testid=version-row]")).to_have_count(1)
    expect(page.locator("[data-track=stable] [data-testid=version-image]")).to_have_text(NEW)
    expect(page.locator("[data-testid=past-canaries]")).to_contain_text("Promoted")
    screenshot("release-promoted")


def test_automatic_steps_move_the_share_while_prometheus_agrees_and_abort_when_it_does_not(
    page, screenshot, shop_admin, shop_namespace, registered_cluster, metrics, celery_worker_thread
):
    registered_cluster.prometheus_url = metrics.url
    registered_cluster.save(update_fields=["prometheus_url"])
    labels = {"namespace": shop_namespace, "service": "shop-api-canary"}
    query = f'max(app_error_ratio{{namespace="{shop_namespace}",service="shop-api-canary"}})'
    metrics.exporter.set("app_error_ratio", labels, 0.001)
    metrics.wait_for(query, 0.001)
    deploy_from_the_form(page, shop_namespace)

    form = page.locator("[data-testid=canary-start-form]")
    form.locator("[data-testid=field-image]").fill(NEW)
    form.locator("[data-testid=field-automatic]").check()
    form.locator("[data-testid=field-analysis_preset]").select_option("custom")
    form.locator("[data-testid=field-analysis_query]").fill(
        'max(app_error_ratio{namespace="$namespace",service="$canary"})'
    )
    form.locator("[data-testid=field-analysis_max]").fill("0.05")
    form.locator("[data-testid=field-analysis_interval]").fill("10")
    screenshot("release-canary-automatic-form")
    page.click("[data-testid=canary-start]")
    confirm_dialog(page)
    expect(page.locator("#messages")).to_contain_text("every 10 seconds while the check passes")
    expect(page.locator("[data-testid=analysis-state]")).to_have_text("Automatic steps running")

    canary = Canary.objects.get(release__name="shop-api")
    check_now(canary)
    page.reload()
    expect(page.locator("[data-testid=analysis-check]").first).to_contain_text("Within the limit")
    expect(page.locator("[data-testid=canary-history]")).to_contain_text("25%")
    reload_until(page, page.locator("[data-track=canary] [data-testid=version-share]"), "25%")
    screenshot("release-canary-automatic-25")
    page.goto("/releases/")
    expect(page.locator("[data-testid=release-canary]").first).to_contain_text("25%")
    expect(page.locator("[data-testid=release-canary]").first).to_contain_text("Automatic steps running")
    screenshot("release-list-canary")
    page.go_back()

    metrics.exporter.set("app_error_ratio", labels, 0.4)
    metrics.wait_for(query, 0.4)
    check_now(canary)
    check_now(canary)
    page.reload()

    expect(page.locator("[data-testid=past-canaries]")).to_contain_text("Aborted")
    expect(page.locator("[data-testid=canary-start-form]")).to_be_visible()
    reload_until(page, page.locator("[data-track=stable] [data-testid=version-share]"), "100%")
    screenshot("release-canary-automatic-aborted")


def test_roll_back_asks_first_shows_what_changes_and_keeps_the_reason(
    page, screenshot, shop_admin, shop_namespace, celery_worker_thread
):
    deploy_from_the_form(page, shop_namespace)
    page.click("[data-testid=release-edit]")
    page.fill("[data-testid=field-image]", NEW)
    page.click("[data-testid=release-form] button[type=submit]")
    expect(page.locator("[data-testid=confirm-question]")).to_contain_text(f"image {NEW}, 2 replicas")
    confirm_dialog(page)
    expect(page.locator("[data-testid=release-image]")).to_have_text(NEW)
    expect(page.locator("[data-testid=job-status]")).to_have_attribute("data-status", "succeeded", timeout=90_000)

    # Cancel sends nothing.
    page.click("[data-testid=rollback-1]")
    page.click("[data-testid=confirm-cancel]")
    expect(page.locator("[data-testid=confirm-modal]")).to_be_hidden()
    expect(page.locator("[data-testid=revision-row]")).to_have_count(2)

    page.click("[data-testid=rollback-1]")
    expect(page.locator("[data-testid=confirm-question]")).to_have_text("Roll shop-api back to revision 1?")
    screenshot("release-rollback-confirm")
    shown = confirm_dialog(page, reason="INC-0815 checkout errors")
    assert "Image" in shown and NEW in shown and OLD in shown
    expect(page.locator("[data-testid=release-image]")).to_have_text(OLD)
    expect(page.locator("[data-testid=revision-row]")).to_have_count(3)
    event = AuditEvent.objects.filter(action="releases.release.rollback").latest("seq")
    assert (event.reason, event.actor_name, event.detail["rollback_of"]) == (
        "INC-0815 checkout errors",
        shop_admin.username,
        1,
    )
    assert list(audit.verify()) == []
