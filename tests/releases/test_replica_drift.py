"""Item: a scale made in the cluster is not silently undone by the next deploy (real sandbox, real inventory)."""

import pytest
from django.urls import reverse

from apps.core.models import AuditEvent
from apps.releases.forms import initial_from_spec
from apps.releases.models import Release
from tests.helpers import login, wait_for
from tests.releases.helpers import NAME, NEW, form_data, roll_out

pytestmark = [pytest.mark.sandbox]


def scale(client, team, replicas: int):
    url = reverse(
        "clusters:workload_scale",
        kwargs={"cluster_id": team["cluster"].pk, "kind": "deployment", "namespace": team["namespace"], "name": NAME},
    )
    response = client.post(url, {"replicas": str(replicas)}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200, response.content.decode()[:300]


def live_replicas(apps_api, namespace):
    return apps_api.read_namespaced_deployment(NAME, namespace).spec.replicas


def edit_data(release: Release, **overrides) -> dict:
    data = {k: v for k, v in initial_from_spec(release.spec).items() if v is not None and v is not False}
    data.update(overrides)
    return data


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_scale_in_the_cluster_shows_as_drift_and_survives_deploy_again_and_an_edit(
    client, team, apps_api, inventory_sync
):
    inventory_sync(["Deployment"])
    login(client, team["user"])
    client.post(
        reverse("releases:release_create"),
        form_data(project=team["project"].pk, namespace=team["namespace"], name=NAME, replicas=2),
    )
    release = Release.objects.get(name=NAME)
    roll_out(release.revisions.get())
    scale(client, team, 3)
    assert live_replicas(apps_api, team["namespace"]) == 3

    page = reverse("releases:release_detail", args=[release.pk])
    assert wait_for(lambda: 'data-testid="replica-drift"' in client.get(page).content.decode(), timeout=20)
    body = client.get(page).content.decode()
    assert 'data-testid="replicas-live">3<' in body and "the release says 2" in body

    # The edit form shows the live count; changing only the image keeps 3 replicas.
    form = client.get(reverse("releases:release_edit", args=[release.pk]))
    assert form.context["form"].initial["replicas"] == 3
    response = client.post(
        reverse("releases:release_edit", args=[release.pk]), edit_data(release, image=NEW, replicas=3, replicas_seen=3)
    )
    assert response.status_code == 302
    assert live_replicas(apps_api, team["namespace"]) == 3
    release.refresh_from_db()
    assert release.spec["replicas"] == 3 and release.spec["image"] == NEW
    roll_out(release.revisions.order_by("-number").first())

    # Scaled again to 4, then "deploy again": the revision records 4, the cluster keeps 4 and the message says so.
    scale(client, team, 4)
    response = client.post(reverse("releases:release_deploy", args=[release.pk]), follow=True)
    assert "keeps the 4 replicas it was scaled to in the cluster" in response.content.decode()
    assert live_replicas(apps_api, team["namespace"]) == 4
    latest = release.revisions.order_by("-number").first()
    assert latest.spec["replicas"] == 4
    event = AuditEvent.objects.filter(action="releases.release.deploy", result="success").latest("pk")
    assert event.detail["replicas_from_cluster"] == 4

    # A rollback changes the image back and still keeps the count the cluster runs.
    roll_out(latest)
    client.post(reverse("releases:release_rollback", args=[release.pk]), {"revision": 1})
    release.refresh_from_db()
    assert release.spec["image"] != NEW and release.spec["replicas"] == 4
    assert live_replicas(apps_api, team["namespace"]) == 4


@pytest.mark.django_db
def test_a_count_the_user_types_wins_over_the_live_one(client, team, apps_api):
    login(client, team["user"])
    client.post(
        reverse("releases:release_create"),
        form_data(project=team["project"].pk, namespace=team["namespace"], name=NAME, replicas=2),
    )
    release = Release.objects.get(name=NAME)
    roll_out(release.revisions.get())
    scale(client, team, 5)
    # The form showed 5 (replicas_seen), the user typed 2 back: 2 it is.
    response = client.post(
        reverse("releases:release_edit", args=[release.pk]), edit_data(release, image=NEW, replicas=2, replicas_seen=5)
    )
    assert response.status_code == 302
    assert live_replicas(apps_api, team["namespace"]) == 2
    # A form shown before a scale to 4 (it showed 2) and left at 2: the newer live count wins.
    roll_out(release.revisions.order_by("-number").first())
    scale(client, team, 4)
    release.refresh_from_db()
    client.post(
        reverse("releases:release_edit", args=[release.pk]),
        edit_data(release, image=NEW + "-b", replicas=2, replicas_seen=2),
    )
    assert live_replicas(apps_api, team["namespace"]) == 4
