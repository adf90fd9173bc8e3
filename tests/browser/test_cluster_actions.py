"""Operating a workload from the console: scale it and watch its pods change in place, and edit its YAML."""

import re
import time
import uuid

import pytest
from django.urls import reverse
from kubernetes import client
from playwright.sync_api import expect

from apps.accounts.k8s import review_access
from apps.accounts.reconcile import reconcile_rbac
from apps.core.models import AuditEvent
from tests.factories import AdminFactory
from tests.helpers import confirm_dialog, sign_in_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.sandbox,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def web_deployment(sandbox):
    namespace = f"shop-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(sandbox.api_client).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
    )
    labels = {"app": "shop-web"}
    client.AppsV1Api(sandbox.api_client).create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="shop-web"),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx:1.27")]),
                ),
            ),
        ),
    )
    yield namespace
    client.CoreV1Api(sandbox.api_client).delete_namespace(namespace)


def test_scale_from_the_page_changes_pods_without_reload_and_bad_yaml_reads_clearly(
    page, screenshot, registered_cluster, web_deployment, inventory_sync
):
    inventory_sync(["Namespace", "Node", "Deployment", "ReplicaSet", "Pod", "Event"])
    admin = AdminFactory()
    reconcile_rbac(registered_cluster)  # the admin's ServiceAccount and binding, as the worker would
    # The apiserver's RBAC cache takes a moment to see new bindings on a loaded machine.
    for _ in range(60):
        if review_access(registered_cluster, admin, [("patch", "apps", "deployments/scale", web_deployment)]) == [True]:
            break
        time.sleep(0.5)
    sign_in_page(page, admin)
    page.goto(f"/clusters/{registered_cluster.pk}/deployments/{web_deployment}/shop-web/")
    pods = page.locator("[data-section=pods] [data-testid=related-row]")
    expect(pods).to_have_count(2, timeout=30_000)
    page.evaluate("window.kubemateMarker = 'same page'")

    page.click("[data-testid=action-scale]")
    page.fill("[data-testid=scale-form] input[name=replicas]", "4")
    page.click("[data-testid=scale-form] button[type=submit]")
    expect(page.locator("[data-testid=confirm-question]")).to_have_text("Scale shop-web from 2 to 4 replicas?")
    confirm_dialog(page, reason="CHG-20261204-007 peak season")
    expect(page.locator("#resource-actions-result")).to_contain_text("4", timeout=10_000)
    scaled = AuditEvent.objects.filter(action="clusters.workload.scale").latest("seq")
    assert scaled.reason == "CHG-20261204-007 peak season" and scaled.actor_name == admin.username
    expect(pods).to_have_count(4, timeout=30_000)
    assert page.evaluate("window.kubemateMarker") == "same page"
    screenshot("deployment-scaled")

    # The pods list: each row's action links (built from one reversed pattern per action) open that pod's pages.
    page.goto(f"/clusters/{registered_cluster.pk}/pods/?namespace={web_deployment}")
    rows = page.locator("[data-testid=resource-row]")
    expect(rows).to_have_count(4, timeout=30_000)
    first = rows.first.get_attribute("data-name")
    logs = rows.first.locator("[data-testid=row-logs]")
    assert logs.get_attribute("href") == reverse(
        "clusters:pod_logs", args=[registered_cluster.pk, web_deployment, first]
    )
    expect(rows.first.locator("[data-testid=row-delete]")).to_be_visible()
    screenshot("pods-row-actions")
    logs.click()
    expect(page).to_have_url(re.compile(re.escape(f"/{web_deployment}/{first}/")))
    page.goto(f"/clusters/{registered_cluster.pk}/deployments/{web_deployment}/shop-web/")

    page.click("[data-testid=action-yaml-edit]")
    # The YAML field is a code editor (CodeMirror, served locally): highlighting, line numbers, folding.
    editor = page.locator("[data-testid=yaml-editor]")
    expect(editor).to_be_visible()
    expect(editor.locator(".cm-lineNumbers")).to_be_visible()
    expect(editor.locator(".cm-foldGutter")).to_be_visible()
    assert editor.locator(".cm-line span").count() > 0  # YAML keys and values are highlighted spans
    text = page.locator("[data-testid=yaml-textarea]").input_value()
    changed = text.replace("replicas: 4", "replicas: -3", 1)
    replace_all = "(t) => { const v = window.kubemateYamlEditor; "
    replace_all += "v.dispatch({changes: {from: 0, to: v.state.doc.length, insert: t}}); }"
    page.evaluate(replace_all, changed)
    assert page.locator("[data-testid=yaml-textarea]").input_value() == changed  # the form posts what was typed
    page.click("[data-testid=yaml-preview]")
    error = page.locator("[data-testid=yaml-error]")
    expect(error).to_be_visible(timeout=10_000)
    expect(error).to_contain_text("replicas")
    # The error is marked at the line the cluster named, in the editor's gutter.
    replicas_line = next(n for n, line in enumerate(changed.splitlines(), 1) if line.strip().startswith("replicas:"))
    expect(error).to_have_attribute("data-error-line", str(replicas_line))
    expect(editor.locator(".cm-lint-marker-error")).to_have_count(1)
    screenshot("yaml-invalid-field")
