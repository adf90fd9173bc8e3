"""Releases against the real sandbox: deploy, pods Running on kwok nodes, change, roll back, conflicts, failures."""

import base64

import pytest
from django.urls import reverse
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from apps.core.deferred import render as R
from apps.core.models import AuditEvent, Job
from apps.releases.models import Release, Revision
from tests.helpers import login, running_pods, wait_for
from tests.releases.helpers import NAME, form_data, roll_out

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]
SELECTOR = f"kubemate.io/release={NAME}"


def create(client, team, **overrides):
    data = form_data(project=team["project"].pk, namespace=team["namespace"], name=NAME, **overrides)
    return login(client, team["user"]).post(reverse("releases:release_create"), data)


def live_container(apps_api, namespace: str) -> dict:
    deployment = apps_api.read_namespaced_deployment(NAME, namespace)
    container = deployment.spec.template.spec.containers[0]
    return {
        "image": container.image,
        "env": [(e.name, e.value, e.value_from.to_dict() if e.value_from else None) for e in container.env or []],
        "resources": container.resources.to_dict(),
        "replicas": deployment.spec.replicas,
    }


def test_deploy_change_the_image_and_roll_back_to_exactly_the_earlier_spec(client, team, sandbox, apps_api, core_api):
    response = create(
        client, team, env="MODE=live\nDB_URL=configmap:payments-config/url", secret_env="DB_PASSWORD=s3cret"
    )
    release = Release.objects.get(name=NAME)
    assert response.status_code == 302 and response["Location"] == reverse("releases:release_detail", args=[release.pk])

    first = release.revisions.get()
    job = roll_out(first)
    first.refresh_from_db()
    assert (job.status, job.progress, first.result) == (Job.Status.SUCCEEDED, 100, Revision.Result.SUCCEEDED)
    assert wait_for(lambda: len(running_pods(sandbox, team["namespace"], SELECTOR)) == 2, timeout=60)
    assert all(p.spec.node_name for p in running_pods(sandbox, team["namespace"], SELECTOR))
    deployment = apps_api.read_namespaced_deployment(NAME, team["namespace"])
    assert deployment.metadata.labels == {
        "app.kubernetes.io/name": NAME,
        "app.kubernetes.io/managed-by": "kubemate",
        "kubemate.io/release": NAME,
    }
    assert {(m.manager, m.operation) for m in deployment.metadata.managed_fields} >= {("kubemate", "Apply")}
    secret = core_api.read_namespaced_secret(f"{NAME}-env", team["namespace"])
    assert base64.b64decode(secret.data["DB_PASSWORD"]).decode() == "s3cret"
    assert "s3cret" not in str(Release.objects.get(pk=release.pk).spec)
    assert "s3cret" not in str(first.spec)
    assert core_api.read_namespaced_service(NAME, team["namespace"]).spec.ports[0].target_port == 8080
    earlier = live_container(apps_api, team["namespace"])
    assert earlier["image"] == "registry.bank.example/payments-api:1.0.0"

    changed = client.post(
        reverse("releases:release_edit", args=[release.pk]),
        form_data(image="registry.bank.example/payments-api:2.0.0", env="MODE=canary", memory_limit="512Mi"),
    )
    assert changed.status_code == 302
    second = release.revisions.get(number=2)
    assert roll_out(second).status == Job.Status.SUCCEEDED
    assert live_container(apps_api, team["namespace"])["image"] == "registry.bank.example/payments-api:2.0.0"

    rolled = client.post(reverse("releases:release_rollback", args=[release.pk]), {"revision": "1"})
    assert rolled.status_code == 302
    third = release.revisions.get(number=3)
    assert third.rollback_of == 1
    assert roll_out(third).status == Job.Status.SUCCEEDED
    assert live_container(apps_api, team["namespace"]) == earlier
    assert wait_for(lambda: len(running_pods(sandbox, team["namespace"], SELECTOR)) == 2, timeout=60)

    actions = list(AuditEvent.objects.filter(object_name=NAME).order_by("seq").values_list("action", "result"))
    assert actions == [
        ("releases.release.create", "success"),
        ("releases.release.deploy", "success"),
        ("releases.release.deploy", "success"),
        ("releases.release.rollback", "success"),
    ]
    page = client.get(reverse("releases:release_detail", args=[release.pk])).content.decode()
    assert "s3cret" not in page and "DB_PASSWORD" in page and "rollback to 1" in page


def test_the_same_spec_again_changes_nothing_and_says_so(client, team, apps_api):
    create(client, team)
    release = Release.objects.get(name=NAME)
    roll_out(release.revisions.get())
    version = apps_api.read_namespaced_deployment(NAME, team["namespace"]).metadata.resource_version

    response = client.post(reverse("releases:release_deploy", args=[release.pk]), follow=True)

    assert "Nothing to change: payments-api already runs revision 1" in response.content.decode()
    assert release.revisions.count() == 1
    assert apps_api.read_namespaced_deployment(NAME, team["namespace"]).metadata.resource_version == version


def test_a_diff_between_two_revisions_shows_the_changed_lines(client, team):
    create(client, team)
    release = Release.objects.get(name=NAME)
    client.post(
        reverse("releases:release_edit", args=[release.pk]), form_data(image="registry.bank.example/payments-api:2.0.0")
    )

    response = client.get(reverse("releases:release_diff", args=[release.pk]), {"a": 1, "b": 2})

    lines = response.content.decode()
    assert "-        image: registry.bank.example/payments-api:1.0.0" in lines
    assert "+        image: registry.bank.example/payments-api:2.0.0" in lines


def test_invalid_input_is_refused_with_sentences_and_nothing_is_applied(client, team, apps_api):
    response = create(client, team, image="Registry/Bad Image!!", ports="70000", memory_limit="12 gigs")

    page = response.content.decode()
    assert response.status_code == 200
    assert "is not an image reference" in page
    assert "Port 70000 is outside 1-65535" in page
    assert "“12 gigs” is not a memory size. Write 512Mi or 2Gi." in page
    assert not Release.objects.exists() and not AuditEvent.objects.filter(action__startswith="releases.").exists()
    with pytest.raises(ApiException) as missing:
        apps_api.read_namespaced_deployment(NAME, team["namespace"])
    assert missing.value.status == 404


def test_a_hand_edit_is_reported_not_overwritten_until_forced(client, team, apps_api):
    create(client, team)
    release = Release.objects.get(name=NAME)
    roll_out(release.revisions.get())
    apps_api.patch_namespaced_deployment(
        NAME,
        team["namespace"],
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.bank.example/hotfix:9"}]}}}},
        field_manager="kubectl-edit",
    )
    new_image = form_data(image="registry.bank.example/payments-api:3.0.0")

    refused = client.post(reverse("releases:release_edit", args=[release.pk]), new_image)

    assert refused.status_code == 200
    assert (
        "Someone changed payments-api by hand (kubectl-edit) since the last release; review and redeploy with force."
        in refused.content.decode()
    )
    assert 'name="force"' in refused.content.decode()
    assert live_container(apps_api, team["namespace"])["image"] == "registry.bank.example/hotfix:9"
    assert release.revisions.count() == 1
    assert AuditEvent.objects.filter(action="releases.release.deploy", result="failure").count() == 1

    forced = client.post(reverse("releases:release_edit", args=[release.pk]), {**new_image, "force": "1"})

    assert forced.status_code == 302
    assert live_container(apps_api, team["namespace"])["image"] == "registry.bank.example/payments-api:3.0.0"


def test_a_rollout_that_cannot_progress_is_reported_with_the_events_that_explain_it(client, team, settings):
    settings.KUBEMATE_RELEASE_ROLLOUT_TIMEOUT_SECONDS = 120
    settings.KUBEMATE_RELEASE_POLL_SECONDS = 0.5
    create(client, team, node_selector="h9.kubemate.dev/pool=nowhere", progress_deadline_seconds=2)
    revision = Release.objects.get(name=NAME).revisions.get()

    job = roll_out(revision)

    revision.refresh_from_db()
    assert job.status == Job.Status.FAILED and revision.result == Revision.Result.FAILED
    message = R(job.message)
    assert message.startswith("payments-api revision 1 did not roll out: Kubernetes gave up after 2 seconds")
    assert "ProgressDeadlineExceeded" in message
    assert "FailedScheduling" in message and "node affinity/selector" in message
    assert R(revision.message).startswith(message[:400])
    assert message.count("FailedScheduling") == 1


def test_autoscaling_is_applied_as_an_hpa_that_owns_the_replica_count(client, team, sandbox, apps_api):
    create(client, team, hpa_enabled="on", hpa_min=2, hpa_max=4, hpa_cpu_percent=70)
    release = Release.objects.get(name=NAME)

    hpa = k8s.AutoscalingV2Api(sandbox.api_client).read_namespaced_horizontal_pod_autoscaler(NAME, team["namespace"])

    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (2, 4)
    assert hpa.spec.metrics[0].resource.name == "cpu"
    assert hpa.spec.metrics[0].resource.target.average_utilization == 70
    assert hpa.spec.scale_target_ref.name == NAME
    deployment = apps_api.read_namespaced_deployment(NAME, team["namespace"])
    kubemate = next(m for m in deployment.metadata.managed_fields if m.manager == "kubemate")
    assert "f:replicas" not in kubemate.fields_v1["f:spec"]

    client.post(reverse("releases:release_edit", args=[release.pk]), form_data(replicas=3))

    with pytest.raises(ApiException) as gone:
        k8s.AutoscalingV2Api(sandbox.api_client).read_namespaced_horizontal_pod_autoscaler(NAME, team["namespace"])
    assert gone.value.status == 404
    assert apps_api.read_namespaced_deployment(NAME, team["namespace"]).spec.replicas == 3


def test_removing_a_release_removes_its_objects(client, team, apps_api, core_api):
    create(client, team, secret_env="TOKEN=abc")
    release = Release.objects.get(name=NAME)
    login(client, team["user"], recent_auth=True)

    response = client.post(reverse("releases:release_delete", args=[release.pk]))

    assert response.status_code == 302 and not Release.objects.exists()
    for read in (apps_api.read_namespaced_deployment, core_api.read_namespaced_service):
        with pytest.raises(ApiException) as gone:
            read(NAME, team["namespace"])
        assert gone.value.status == 404
    assert AuditEvent.objects.filter(action="releases.release.delete", result="success").count() == 1
