"""A release gaining and dropping a volume in the sandbox: the claim it creates is applied and removed with it, and
its Deployment switches from rolling updates to Recreate and back (Kubernetes refuses a Recreate Deployment that
keeps the defaulted rollingUpdate fields, so the first apply takes them over before the second removes them)."""

import pytest
from django.urls import reverse
from kubernetes import client as k8s

from apps.releases import services
from apps.releases.models import Release
from tests.helpers import login, unique
from tests.releases.helpers import form_data

pytestmark = pytest.mark.sandbox


@pytest.fixture
def volume_class(sandbox):
    """A storage class name with one volume of it, so a claim of that class binds (the sandbox has no provisioner)."""
    name = unique("data")
    core = k8s.CoreV1Api(sandbox.api_client)
    core.create_persistent_volume(
        k8s.V1PersistentVolume(
            metadata=k8s.V1ObjectMeta(name=name),
            spec=k8s.V1PersistentVolumeSpec(
                capacity={"storage": "2Gi"},
                access_modes=["ReadWriteOnce"],
                storage_class_name=name,
                host_path=k8s.V1HostPathVolumeSource(path=f"/tmp/{name}"),
            ),
        )
    )
    yield name
    core.delete_persistent_volume(name)


def _claims(sandbox, namespace):
    items = k8s.CoreV1Api(sandbox.api_client).list_namespaced_persistent_volume_claim(namespace).items
    return [c.metadata.name for c in items if not c.metadata.deletion_timestamp]


def test_a_release_gains_a_volume_and_recreates_then_drops_it_and_rolls_again(client, team, sandbox, volume_class):
    namespace, owner = team["namespace"], team["user"]
    data = form_data(project=team["project"].pk, namespace=namespace, name="payments-api")
    login(client, owner).post(reverse("releases:release_create"), data)
    release = Release.objects.get(name="payments-api")
    apps = k8s.AppsV1Api(sandbox.api_client)
    assert apps.read_namespaced_deployment("payments-api", namespace).spec.strategy.type == "RollingUpdate"
    volume = {
        "claim": "payments-data",
        "create": True,
        "size": "1Gi",
        "storage_class": volume_class,
        "access_mode": "ReadWriteOnce",
        "mount_path": "/data",
    }

    services.deploy_release(actor=owner, release=release, spec={**release.spec, "volume": volume})
    with_volume = apps.read_namespaced_deployment("payments-api", namespace)
    again = services.deploy_release(actor=owner, release=release, spec={**release.spec, "replicas": 1})
    without = {key: value for key, value in release.spec.items() if key != "volume"}
    services.deploy_release(actor=owner, release=release, spec=without)
    rolled = apps.read_namespaced_deployment("payments-api", namespace)

    assert with_volume.spec.strategy.type == "Recreate"
    assert with_volume.spec.strategy.rolling_update is None
    assert with_volume.spec.template.spec.volumes[0].persistent_volume_claim.claim_name == "payments-data"
    assert again.revision is not None  # no hand edit seen in Kubemate's own two applies
    assert rolled.spec.strategy.type == "RollingUpdate"
    assert rolled.spec.template.spec.volumes is None
    assert _claims(sandbox, namespace) == []


def test_a_mounted_claim_the_release_did_not_create_is_never_removed(client, team, sandbox, volume_class):
    namespace, owner = team["namespace"], team["user"]
    claim = k8s.V1PersistentVolumeClaim(
        metadata=k8s.V1ObjectMeta(name="shared-models"),
        spec=k8s.V1PersistentVolumeClaimSpec(
            access_modes=["ReadWriteOnce"],
            storage_class_name=volume_class,
            resources=k8s.V1VolumeResourceRequirements(requests={"storage": "1Gi"}),
        ),
    )
    k8s.CoreV1Api(sandbox.api_client).create_namespaced_persistent_volume_claim(namespace, claim)
    data = form_data(project=team["project"].pk, namespace=namespace, name="payments-api")
    login(client, owner).post(reverse("releases:release_create"), data)
    release = Release.objects.get(name="payments-api")
    volume = {"claim": "shared-models", "create": False, "access_mode": "ReadWriteOnce", "mount_path": "/models"}

    services.deploy_release(actor=owner, release=release, spec={**release.spec, "volume": volume})
    without = {key: value for key, value in release.spec.items() if key != "volume"}
    services.deploy_release(actor=owner, release=release, spec=without)
    services.delete_release(actor=owner, release=release)

    assert _claims(sandbox, namespace) == ["shared-models"]
