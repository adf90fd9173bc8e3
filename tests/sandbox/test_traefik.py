"""Every sandbox runs Traefik as its Gateway API controller: routes get a real status from it.

Run: python -m pytest tests/sandbox/test_traefik.py -p tests.plugins.sandbox
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from kubernetes import client

pytestmark = pytest.mark.sandbox

GROUP, VERSION = "gateway.networking.k8s.io", "v1"
TRAEFIK = "system:serviceaccount:gateway-system:traefik"


def wait_until(what, probe, timeout=60.0, interval=0.3):
    """Poll ``probe`` until it returns a truthy value; fail with what was awaited."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = probe()
    assert value, f"timed out after {timeout}s waiting for {what}"
    return value


def conditions(obj: dict) -> dict[str, dict]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def route_conditions(custom, namespace: str, name: str) -> dict[str, dict]:
    """The conditions Traefik wrote for the route's one parent, by type; empty before it wrote any."""
    route = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "httproutes", name)
    parents = (route.get("status") or {}).get("parents") or []
    if not parents:
        return {}
    assert [p["controllerName"] for p in parents] == ["traefik.io/gateway-controller"]
    return {c["type"]: c for c in parents[0]["conditions"]}


def http_route(name: str, backend: str) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"name": "public", "namespace": "gateway-system"}],
            "hostnames": [f"{name}.bank.example"],
            "rules": [{"backendRefs": [{"name": backend, "port": 80}]}],
        },
    }


def web_service(name: str) -> client.V1Service:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1ServiceSpec(selector={"app": name}, ports=[client.V1ServicePort(port=80, target_port=8080)]),
    )


def routers(sandbox, prefix: str) -> list[dict]:
    """Traefik's live HTTP routers whose name starts with ``prefix`` (its API, on the ping port)."""
    url = sandbox.env["KUBEMATE_SANDBOX_TRAEFIK"] + "/api/http/routers?per_page=1000"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the sandbox's loopback Traefik
        return [r for r in json.loads(response.read()) if r["name"].startswith(prefix)]


def may(sandbox, verb: str, resource: str, namespace: str = "", subresource: str = "", group: str = GROUP) -> bool:
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=TRAEFIK,
            groups=["system:serviceaccounts", "system:serviceaccounts:gateway-system", "system:authenticated"],
            resource_attributes=client.V1ResourceAttributes(
                group=group, resource=resource, subresource=subresource, verb=verb, namespace=namespace
            ),
        )
    )
    return client.AuthorizationV1Api(sandbox.api_client).create_subject_access_review(review).status.allowed


def test_the_gateway_is_traefiks_programmed_on_its_entrypoint_ports(sandbox):
    custom = client.CustomObjectsApi(sandbox.api_client)

    gateway_class = custom.get_cluster_custom_object(GROUP, VERSION, "gatewayclasses", "traefik")
    gateway = custom.get_namespaced_custom_object(GROUP, VERSION, "gateway-system", "gateways", "public")

    assert gateway_class["spec"]["controllerName"] == "traefik.io/gateway-controller"
    assert conditions(gateway_class)["Accepted"]["status"] == "True"
    assert conditions(gateway)["Programmed"]["status"] == "True"
    assert gateway["status"]["addresses"] == [{"type": "IPAddress", "value": "127.0.0.1"}]
    ports = {listener["name"]: listener["port"] for listener in gateway["spec"]["listeners"]}
    assert ports == {
        "http": int(sandbox.env["KUBEMATE_SANDBOX_GATEWAY_HTTP_PORT"]),
        "https": int(sandbox.env["KUBEMATE_SANDBOX_GATEWAY_HTTPS_PORT"]),
    }
    programmed = {
        listener["name"]: {c["type"]: c["status"] for c in listener["conditions"]}.get("Programmed")
        for listener in gateway["status"]["listeners"]
    }
    assert programmed == {"http": "True", "https": "True"}
    with urllib.request.urlopen(sandbox.env["KUBEMATE_SANDBOX_TRAEFIK"] + "/ping", timeout=5) as response:  # noqa: S310
        assert response.read() == b"OK"


def test_traefik_runs_as_a_service_account_with_its_documented_rbac_only(sandbox):
    assert may(sandbox, "update", "httproutes", "payments", subresource="status")
    assert may(sandbox, "list", "secrets", group="")
    assert not may(sandbox, "update", "httproutes", "payments")
    assert not may(sandbox, "delete", "secrets", "payments", group="")
    assert not may(sandbox, "create", "deployments", "payments", group="apps")


def test_a_route_to_a_service_is_accepted_and_resolved_and_traefik_routes_it(sandbox, namespace):
    custom = client.CustomObjectsApi(sandbox.api_client)
    client.CoreV1Api(sandbox.api_client).create_namespaced_service(namespace, web_service("web"))

    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "httproutes", http_route("web", "web"))

    found = wait_until(
        "Accepted=True and ResolvedRefs=True from Traefik",
        lambda: (lambda c: c if c.get("ResolvedRefs", {}).get("status") == "True" else None)(
            route_conditions(custom, namespace, "web")
        ),
    )
    assert (found["Accepted"]["status"], found["Accepted"]["reason"]) == ("True", "Accepted")
    assert found["ResolvedRefs"]["reason"] == "ResolvedRefs"
    # The status is written while the configuration is built; the router is live a moment later.
    mine = wait_until("Traefik's router for the route", lambda: routers(sandbox, f"httproute-{namespace}-web-"), 10)
    assert {tuple(r["entryPoints"]) for r in mine} == {("web",)}
    assert all('Host("web.bank.example")' in r["rule"] for r in mine)


def test_a_route_to_a_missing_service_is_accepted_but_not_resolved_until_the_service_exists(sandbox, namespace):
    custom = client.CustomObjectsApi(sandbox.api_client)

    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "httproutes", http_route("shop", "missing"))

    found = wait_until(
        "ResolvedRefs from Traefik", lambda: route_conditions(custom, namespace, "shop").get("ResolvedRefs")
    )
    assert (found["status"], found["reason"]) == ("False", "BackendNotFound")
    assert f"{namespace}/missing" in found["message"]
    assert route_conditions(custom, namespace, "shop")["Accepted"]["status"] == "True"

    client.CoreV1Api(sandbox.api_client).create_namespaced_service(namespace, web_service("missing"))
    wait_until(
        "ResolvedRefs=True once the Service exists",
        lambda: route_conditions(custom, namespace, "shop")["ResolvedRefs"]["status"] == "True",
    )
