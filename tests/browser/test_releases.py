"""Shipping an app from the console: deploy it from the release form, release a canary at 10%, promote it."""

import time
import uuid

import pytest
from kubernetes import client
from playwright.sync_api import expect

from apps.accounts import services
from apps.accounts.k8s import review_access
from apps.accounts.models import Project
from tests.browser.test_console import login
from tests.factories import AdminFactory

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


def test_deploy_from_the_form_release_a_canary_at_10_percent_and_promote_it(
    page, screenshot, registered_cluster, shop_namespace, inventory_sync, celery_worker_thread
):
    inventory_sync(["Namespace", "Deployment", "ReplicaSet", "Pod", "Service", "HTTPRoute", "Event"])
    admin = AdminFactory()
    Project.objects.create(cluster=registered_cluster, slug="shop", name="Shop", namespaces=[shop_namespace])
    services.reconcile_rbac(registered_cluster)
    for _ in range(60):
        checks = [
            ("create", "apps", "deployments", shop_namespace),
            ("patch", "gateway.networking.k8s.io", "httproutes", shop_namespace),
        ]
        if review_access(registered_cluster, admin, checks) == [True, True]:
            break
        time.sleep(0.5)
    login(page, admin)

    page.goto("/releases/new/")
    page.select_option("[data-testid=field-project]", label="Shop")
    page.fill("[data-testid=field-namespace]", shop_namespace)
    page.fill("[data-testid=field-name]", "shop-api")
    page.fill("[data-testid=field-image]", OLD)
    page.fill("[data-testid=field-ports]", "8080")
    page.check("[data-testid=field-route_enabled]")
    page.fill("[data-testid=field-route_hostname]", "shop.bank.example")
    page.fill("[data-testid=field-gateway_namespace]", "gateway-system")
    page.fill("[data-testid=field-gateway_name]", "public")
    screenshot("release-form")
    page.click("[data-testid=release-form] button[type=submit]")

    expect(page.locator("[data-testid=release-name]")).to_have_text("shop-api")
    expect(page.locator("[data-testid=job-status]")).to_have_attribute("data-status", "succeeded", timeout=90_000)
    reload_until(page, page.locator("[data-track=stable] [data-testid=version-ready]"), "2/2")
    screenshot("release-deployed")

    page.fill("[data-testid=canary-start-form] [data-testid=field-image]", NEW)
    page.fill("[data-testid=canary-start-form] [data-testid=field-weight]", "10")
    page.click("[data-testid=canary-start]")
    expect(page.locator("#messages")).to_contain_text("10% of the traffic")
    reload_until(page, page.locator("[data-track=canary] [data-testid=version-share]"), "10%")
    expect(page.locator("[data-track=stable] [data-testid=version-share]")).to_contain_text("90%")
    expect(page.locator("[data-testid=canary-route-status]")).to_contain_text("NotAccepted")
    reload_until(page, page.locator("[data-track=canary] [data-testid=version-ready]"), "1/1")
    screenshot("release-canary-10")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("[data-testid=canary-promote]")
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
