"""Grey and canary releases against the real sandbox: weights, header and cookie matches, steps, promote, abort."""

import pytest
from django.urls import reverse
from kubernetes.client.exceptions import ApiException

from apps.core.deferred import render as R
from apps.core.models import AuditEvent, Job
from apps.releases.models import Canary, Release, Revision
from tests.helpers import wait_for
from tests.releases.helpers import (
    CANARY,
    NAME,
    NEW,
    OLD,
    ROUTE,
    canary_leftovers,
    deployments,
    form_data,
    live_route,
    roll_out,
    weights,
)

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]


def start(client, release, **data):
    return client.post(reverse("releases:canary_start", args=[release.pk]), {"image": NEW, "replicas": 1, **data})


def test_a_grey_release_at_10_percent_splits_the_route_90_10_and_steps_to_50(
    client, team, deployed, sandbox, apps_api, core_api
):
    namespace = team["namespace"]

    response = start(client, deployed, mode="weight", weight=10)

    assert response.status_code == 302
    assert weights(live_route(sandbox, namespace)) == [(NAME, 90), (CANARY, 10)]
    assert deployments(apps_api, namespace) == [(NAME, OLD), (CANARY, NEW)]
    canary_service = core_api.read_namespaced_service(CANARY, namespace)
    assert canary_service.spec.selector == {"app.kubernetes.io/name": CANARY, "kubemate.io/release": NAME}
    assert wait_for(
        lambda: (
            len(core_api.list_namespaced_pod(namespace, label_selector=f"app.kubernetes.io/name={CANARY}").items) == 1
        )
    )
    stable_pods = core_api.list_namespaced_pod(namespace, label_selector=f"app.kubernetes.io/name={NAME}").items
    assert {p.spec.containers[0].image for p in stable_pods} == {OLD}

    stepped = client.post(reverse("releases:canary_step", args=[deployed.pk]), {"weight": 50})

    assert stepped.status_code == 302
    assert weights(live_route(sandbox, namespace)) == [(NAME, 50), (CANARY, 50)]
    assert Canary.objects.get().weight == 50
    assert list(Canary.objects.get().steps.values_list("action", "weight")) == [("start", 10), ("step", 50)]
    actions = list(
        AuditEvent.objects.filter(action__startswith="releases.canary").order_by("seq").values_list("action", "result")
    )
    assert actions == [("releases.canary.start", "success"), ("releases.canary.step", "success")]


def test_header_mode_routes_requests_with_the_header_to_the_canary(client, team, deployed, sandbox):
    response = start(client, deployed, mode="header", match_name="X-Canary", match_value="true")

    assert response.status_code == 302
    rules = live_route(sandbox, team["namespace"])["spec"]["rules"]
    assert rules[0]["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/"},
            "headers": [{"type": "Exact", "name": "X-Canary", "value": "true"}],
        }
    ]
    assert [ref["name"] for ref in rules[0]["backendRefs"]] == [CANARY]
    assert [ref["name"] for ref in rules[1]["backendRefs"]] == [NAME]
    assert "headers" not in rules[1]["matches"][0]


def test_cookie_mode_matches_the_cookie_header(client, team, deployed, sandbox):
    start(client, deployed, mode="cookie", match_name="canary", match_value="yes")

    header = live_route(sandbox, team["namespace"])["spec"]["rules"][0]["matches"][0]["headers"][0]

    assert (header["type"], header["name"]) == ("RegularExpression", "Cookie")
    assert "canary=yes" in header["value"]


def test_promote_leaves_one_deployment_at_the_canary_image_and_no_canary_objects(
    client, team, deployed, sandbox, apps_api, core_api
):
    namespace = team["namespace"]
    start(client, deployed, mode="weight", weight=10)

    response = client.post(reverse("releases:canary_promote", args=[deployed.pk]))

    assert response.status_code == 302
    revision = deployed.revisions.get(number=2)
    assert revision.spec["image"] == NEW and R(revision.note) == "canary promoted"
    assert roll_out(revision).status == Job.Status.SUCCEEDED
    assert deployments(apps_api, namespace) == [(NAME, NEW)]
    assert weights(live_route(sandbox, namespace)) == [(NAME, 1)]
    assert wait_for(lambda: canary_leftovers(apps_api, core_api, namespace) == [], timeout=60)
    assert Release.objects.get(pk=deployed.pk).spec["image"] == NEW
    canary = Canary.objects.get()
    assert (canary.state, canary.revision) == (Canary.State.PROMOTED, revision)
    assert AuditEvent.objects.filter(action="releases.canary.promote", result="success").count() == 1


def test_a_promote_refused_over_a_hand_edit_offers_force_and_force_overwrites_it(
    client, team, deployed, sandbox, apps_api
):
    namespace = team["namespace"]
    start(client, deployed, mode="weight", weight=10)
    hotfix = {
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.bank.example/hotfix:9"}]}}}
    }
    apps_api.patch_namespaced_deployment(NAME, namespace, hotfix, field_manager="kubectl-edit")

    refused = client.post(reverse("releases:canary_promote", args=[deployed.pk]), follow=True)

    page = refused.content.decode()
    assert "Someone changed payments-api by hand (kubectl-edit)" in page
    assert 'data-testid="force-promote"' in page
    assert sorted(deployments(apps_api, namespace)) == [(NAME, "registry.bank.example/hotfix:9"), (CANARY, NEW)]
    assert Canary.objects.get().state == Canary.State.ACTIVE

    forced = client.post(reverse("releases:canary_promote", args=[deployed.pk]), {"force": "1"})

    assert forced.status_code == 302
    assert deployments(apps_api, namespace) == [(NAME, NEW)]
    assert Canary.objects.get().state == Canary.State.PROMOTED


def test_abort_leaves_the_stable_deployment_at_its_old_image_and_no_canary_objects(
    client, team, deployed, sandbox, apps_api, core_api
):
    namespace = team["namespace"]
    start(client, deployed, mode="weight", weight=25)
    assert wait_for(lambda: len(canary_leftovers(apps_api, core_api, namespace)) >= 4)

    response = client.post(reverse("releases:canary_abort", args=[deployed.pk]))

    assert response.status_code == 302
    assert deployments(apps_api, namespace) == [(NAME, OLD)]
    assert weights(live_route(sandbox, namespace)) == [(NAME, 1)]
    assert wait_for(lambda: canary_leftovers(apps_api, core_api, namespace) == [], timeout=60)
    assert deployed.revisions.count() == 1
    assert Canary.objects.get().state == Canary.State.ABORTED
    with pytest.raises(ApiException) as missing:
        core_api.read_namespaced_service(CANARY, namespace)
    assert missing.value.status == 404


def test_deploying_while_a_canary_runs_is_refused_and_changes_nothing(client, team, deployed, apps_api):
    start(client, deployed, mode="weight", weight=10)

    response = client.post(
        reverse("releases:release_edit", args=[deployed.pk]),
        form_data(image="registry.bank.example/payments-api:3.0.0", **ROUTE),
    )

    assert response.status_code == 200
    assert (
        "A canary of payments-api is running: promote or abort it before deploying or rolling back."
        in response.content.decode()
    )
    assert deployments(apps_api, team["namespace"]) == [(NAME, OLD), (CANARY, NEW)]
    assert deployed.revisions.count() == 1


def test_a_second_canary_is_refused_while_one_runs(client, team, deployed):
    start(client, deployed, mode="weight", weight=10)

    response = start(client, deployed, mode="weight", weight=20, image="registry.bank.example/payments-api:9.0.0")

    assert response.status_code == 302
    assert Canary.objects.count() == 1
    assert AuditEvent.objects.filter(action="releases.canary.start").count() == 1
    follow = client.get(reverse("releases:release_detail", args=[deployed.pk])).content.decode()
    assert "A canary of payments-api is already running: promote or abort it first." in follow
    assert Revision.objects.count() == 1
