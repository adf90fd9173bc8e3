"""The pages an operator starts from, in both languages, as screenshots for the record (.run/screenshots): the
dashboard, the events list and the deploy form. The browser also checks each reads in the right language."""

import time
import uuid

import pytest
from kubernetes import client
from playwright.sync_api import expect

from apps.accounts.models import Project
from apps.accounts.reconcile import reconcile_rbac
from tests.factories import AdminFactory
from tests.helpers import sign_in_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.sandbox,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def shop(sandbox, registered_cluster, inventory_sync):
    namespace = f"shop-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(sandbox.api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    core.create_namespaced_event(
        namespace,
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=f"web.{uuid.uuid4().hex[:8]}"),
            involved_object=client.V1ObjectReference(kind="Pod", name="web-1", namespace=namespace),
            reason="BackOff",
            message="Back-off restarting failed container web",
            type="Warning",
        ),
    )
    Project.objects.create(cluster=registered_cluster, slug="shop", name="Shop", namespaces=[namespace])
    reconcile_rbac(registered_cluster)
    inventory_sync(["Namespace", "Node", "Pod", "Deployment", "Event"])
    yield namespace
    core.delete_namespace(namespace)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_screenshots_of_the_dashboard_events_and_deploy_form(
    page, screenshot, live_server, registered_cluster, shop, language
):
    sign_in_page(page, AdminFactory())
    page.context.add_cookies([{"name": "kubemate_language", "value": language, "url": live_server.url}])
    suffix = "" if language == "en" else "-zh"
    chinese = language != "en"

    page.goto("/")
    expect(page.locator("[data-testid=problems]")).to_be_visible()
    expect(page.locator("h2.page-title")).to_have_text("仪表盘" if chinese else "Dashboard")
    screenshot(f"dashboard{suffix}")

    page.goto(f"/clusters/{registered_cluster.pk}/events/?namespace={shop}")
    for _ in range(30):
        if page.locator("[data-testid=resource-row]").count():
            break
        time.sleep(1)
        page.reload()
    expect(page.locator("tr.table-warning").first).to_contain_text("BackOff")
    expect(page.locator("[data-testid=event-object]").first).to_contain_text("Pod web-1")
    screenshot(f"events{suffix}")

    page.goto("/releases/new/")
    page.select_option("[data-testid=field-namespace]", shop)
    page.fill("[data-testid=field-ports]", "80")
    expect(page.locator("[data-testid=field-readiness_port]")).to_have_value("80")
    screenshot(f"deploy-form{suffix}")
