"""The release page says whether the gateway took the release's route, as Traefik (the sandbox's Gateway API
controller) wrote it on the HTTPRoute and the inventory synced it: no mock, no call on the page view."""

import pytest
from django.urls import reverse
from kubernetes import client as k8s

from apps.releases.models import Release
from tests.helpers import login, wait_for
from tests.releases.helpers import NAME, ROUTE, form_data, roll_out

pytestmark = [pytest.mark.sandbox, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def route_status(client, release: Release) -> str:
    """The route status block of the release page ("" when the page has none)."""
    page = client.get(reverse("releases:release_detail", args=[release.pk])).content.decode()
    return (
        page.split('data-testid="route-status"')[1].split('data-testid="history"')[0] if "route-status" in page else ""
    )


def deploy(client, team, **route) -> Release:
    data = form_data(project=team["project"].pk, namespace=team["namespace"], name=NAME, **{**ROUTE, **route})
    login(client, team["user"]).post(reverse("releases:release_create"), data)
    release = Release.objects.get(name=NAME)
    roll_out(release.revisions.get())
    return release


def test_a_route_traefik_accepted_shows_accepted_by_the_gateway_and_its_backends_found(
    client, team, inventory_sync, core_api
):
    inventory_sync(["HTTPRoute"])
    release = deploy(client, team)

    block = wait_for(
        lambda: (lambda b: b if 'data-testid="route-resolved" data-status="True"' in b else "")(
            route_status(client, release)
        )
    )

    assert "Accepted by gateway public (Traefik)" in block
    assert 'data-gateway="gateway-system/public"' in block and "Backends found" in block
    assert "Not accepted" not in block and "Waiting for the gateway controller" not in block

    # The release's Service deleted by hand: Traefik reports the backend missing, with its reason and message.
    core_api.delete_namespaced_service(NAME, team["namespace"])
    block = wait_for(
        lambda: (lambda b: b if 'data-testid="route-resolved" data-status="False"' in b else "")(
            route_status(client, release)
        )
    )
    assert "Accepted by gateway public (Traefik)" in block
    assert "Backends not resolved" in block and "BackendNotFound" in block
    assert f"Cannot load HTTPBackendRef {team['namespace']}/{NAME}" in block
    assert '<span translate="no" lang="en">' in block


def test_a_route_the_gateway_does_not_allow_shows_not_accepted_with_the_reason(client, team, inventory_sync, sandbox):
    # A Gateway of Traefik's class in the team's namespace that takes routes only from namespaces labelled edge=yes.
    gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "internal", "namespace": team["namespace"]},
        "spec": {
            "gatewayClassName": "traefik",
            "listeners": [
                {
                    "name": "http",
                    "protocol": "HTTP",
                    "port": int(sandbox.env["KUBEMATE_SANDBOX_GATEWAY_HTTP_PORT"]),
                    "allowedRoutes": {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"edge": "yes"}}}},
                }
            ],
        },
    }
    k8s.CustomObjectsApi(sandbox.api_client).create_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", team["namespace"], "gateways", gateway
    )
    inventory_sync(["HTTPRoute"])

    release = deploy(client, team, gateway_namespace=team["namespace"], gateway_name="internal")

    block = wait_for(lambda: (lambda b: b if 'data-status="False"' in b else "")(route_status(client, release)))
    assert f'data-gateway="{team["namespace"]}/internal"' in block
    assert "Not accepted" in block and "NotAllowedByListeners" in block
    assert "Accepted by gateway" not in block
