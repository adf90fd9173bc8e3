"""The cluster's API server stops (issue 11, faults): pages render from the inventory, live pages and actions
answer a sentence, nothing is half-done, and the same session works again when it returns.

The sandbox is registered through a relay the test cuts (a stopped API server refuses connections and drops
open ones); the sandbox itself keeps serving the other tests. The seconds each phase took are printed.
"""

import time

import pytest
from django.test import Client
from django.urls import reverse
from kubernetes import client as k8s

from apps.accounts.reconcile import reconcile_rbac
from apps.clusters.registry.services import register_from_kubeconfig
from apps.core.models import AuditEvent
from tests.clusters.inventory_rows import deployment, detail_url, list_url
from tests.faults.proxy import Relay
from tests.helpers import login

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]


@pytest.fixture
def relayed(sandbox, admin_user):
    host, port = sandbox.server.removeprefix("https://").rsplit(":", 1)
    relay = Relay(host.strip("[]"), int(port))
    relay.up()
    kubeconfig = sandbox.kubeconfig.read_text().replace(sandbox.server, f"https://{host}:{relay.port}")
    cluster = register_from_kubeconfig(actor=None, name="behind-relay", kubeconfig_text=kubeconfig)
    reconcile_rbac(cluster)  # the people acting below are known to the cluster
    yield cluster, relay
    relay.down()


def test_pages_render_and_actions_say_so_while_the_api_server_is_stopped(sandbox, relayed, admin_user):
    cluster, relay = relayed
    node = k8s.CoreV1Api(sandbox.api_client).list_node().items[0].metadata.name
    row = deployment(cluster, "pay-api", "default")
    person = login(Client(), admin_user, recent_auth=True)
    pages = {
        "overview": reverse("clusters:cluster_overview", args=[cluster.pk]),
        "deployments": list_url(cluster, "deployments"),
        "detail": detail_url(row),
        "dashboard": reverse("dashboard"),
        "releases": reverse("releases:release_list"),
    }
    yaml_url = reverse("clusters:resource_yaml", args=[cluster.pk, "deployment", "default", "pay-api"])
    cordon_url = reverse("clusters:node_cordon", args=[cluster.pk, node])

    relay.down()
    started = time.monotonic()
    down = {name: person.get(url).status_code for name, url in pages.items()}
    live = person.get(yaml_url)
    cordon = person.post(cordon_url, HTTP_HX_REQUEST="true")
    seconds = time.monotonic() - started

    print(f"\nAPI server stopped: {len(pages)} pages, a live page and an action answered in {seconds:.1f} s")
    assert down == dict.fromkeys(pages, 200)
    assert live.status_code < 500 and "cannot be reached" in live.content.decode(), live.content.decode()[-800:]
    assert cordon.status_code < 500 and "cannot be reached" in cordon.content.decode()
    assert k8s.CoreV1Api(sandbox.api_client).read_node(node).spec.unschedulable is not True  # nothing applied
    refused = AuditEvent.objects.get(action="clusters.node.cordon", object_name=node)
    assert refused.result == "failure"

    relay.up()
    back = person.post(cordon_url, HTTP_HX_REQUEST="true")
    assert back.status_code == 200 and "is cordoned" in back.content.decode(), back.content.decode()[-600:]
    assert k8s.CoreV1Api(sandbox.api_client).read_node(node).spec.unschedulable is True
    k8s.CoreV1Api(sandbox.api_client).patch_node(node, {"spec": {"unschedulable": None}})
