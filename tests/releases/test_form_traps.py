"""The deploy form's traps (issue: the operator's day, item 5): namespaces and Gateways are picked, not typed;
probe ports follow the first container port and a probe on a port the container does not list is pointed out."""

import pytest
from django.urls import reverse

from apps.releases.forms import ReleaseForm
from tests.factories import ClusterFactory, ResourceFactory
from tests.helpers import login
from tests.releases.helpers import form_data, member

pytestmark = pytest.mark.django_db

GATEWAY = {
    "spec": {
        "gatewayClassName": "bank-gw",
        "listeners": [
            {"name": "http", "protocol": "HTTP", "port": 80},
            {"name": "https", "protocol": "HTTPS", "port": 443, "hostname": "*.bank.example"},
        ],
    },
    "status": {"conditions": [{"type": "Programmed", "status": "True"}]},
}


def create(release, user, **overrides) -> ReleaseForm:
    """The new-release form as the browser posts it, validated (creating it also asks the cluster, which the
    sandbox release tests cover)."""
    data = form_data(project=release.project.pk, namespace="payments", name="checkout", **overrides)
    form = ReleaseForm(data, user=user)
    form.is_valid()
    return form


def test_probe_ports_follow_the_first_container_port_unless_changed(release):
    # The form opened with port 8080 and both probes on 8080; the person typed 80 and left the probes alone.
    form = create(release, member(release), ports="80, 9090")
    assert form.is_valid(), form.errors
    spec = form.spec()
    assert (spec["ports"], spec["readiness"]["port"], spec["liveness"]["port"]) == ([80, 9090], 80, 80)
    assert form.warnings == []


def test_a_probe_on_a_port_the_container_does_not_list_is_pointed_out_live(client, release):
    login(client, member(release))
    data = form_data(project=release.project.pk, namespace="payments", name="checkout", ports="80", readiness_port=81)
    preview = client.post(reverse("releases:release_preview"), data, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="preview-warning"' in preview
    assert "The readiness probe checks port 81, which is not one of the container ports (80)." in preview
    # A port the person chose on purpose (a sidecar's) is kept: the warning does not block the deploy.
    form = create(release, member(release), ports="80", readiness_port=81)
    assert form.is_valid() and form.spec()["readiness"]["port"] == 81 and len(form.warnings) == 1


def test_the_gateway_is_picked_from_the_inventory_with_its_listeners(client, release):
    cluster = release.project.cluster
    ResourceFactory(cluster=cluster, kind="Gateway", namespace="gateway-system", name="public", obj=GATEWAY)
    elsewhere = ResourceFactory(
        cluster=ClusterFactory(), kind="Gateway", namespace="gateway-system", name="dmz", obj=GATEWAY
    )
    user = member(release)
    page = login(client, user).get(reverse("releases:release_create")).content.decode()
    value = f"{cluster.pk}/gateway-system/public"
    assert f'<option value="{value}">gateway-system/public — http HTTP:80, https HTTPS:443 (*.bank.example)' in page
    assert "dmz" not in page  # a cluster where the user deploys nothing

    refused = create(release, user, route_enabled="on", gateway=f"{elsewhere.cluster_id}/gateway-system/dmz")
    assert "Select a valid choice" in str(refused.errors["gateway"])

    form = create(release, user, route_enabled="on", route_hostname="pay.bank.example", gateway=value)
    assert form.is_valid(), form.errors
    route = form.spec()["route"]
    assert (route["gateway_namespace"], route["gateway_name"]) == ("gateway-system", "public")

    release.spec = {**release.spec, "route": {**route, "enabled": True}}
    release.save()
    edit = login(client, user).get(reverse("releases:release_edit", args=[release.pk]))
    assert edit.context["form"].initial["gateway"] == value


def test_a_gateway_kubemate_has_not_read_can_still_be_typed(release):
    form = create(
        release, member(release), route_enabled="on", gateway="other", gateway_namespace="edge", gateway_name="internal"
    )
    assert form.is_valid(), form.errors
    route = form.spec()["route"]
    assert (route["gateway_namespace"], route["gateway_name"]) == ("edge", "internal")
