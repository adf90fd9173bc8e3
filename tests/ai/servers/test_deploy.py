"""Deploying a model server from the form into the sandbox: a release with the GPU request, toleration, node
selector, volume claim and probes, placed on the GPU node by the real scheduler; refused for people without
ai.serve, undone when Kubernetes refuses, removed with its objects."""

import pytest
from django.urls import reverse
from kubernetes import client as k8s

from apps.accounts import services as account_services
from apps.accounts.models import Role
from apps.ai.models import Endpoint
from apps.clusters.inventory.sync import full_resync
from apps.clusters.kinds import BY_KIND
from apps.core.models import AuditEvent
from apps.releases.models import Release
from tests.ai.servers.helpers import live_deployment, objects_in, server_form
from tests.factories import UserFactory
from tests.helpers import login, running_pods, wait_for

pytestmark = pytest.mark.sandbox


def _deploy(client, team, name="llm-chat", **overrides):
    data = server_form(team["project"], team["namespace"], name, storage_class=team["storage_class"], **overrides)
    return login(client, team["owner"]).post(reverse("ai:server_new"), data)


def test_an_ollama_server_with_one_gpu_is_a_release_whose_pod_lands_on_the_gpu_node(client, gpu_team, sandbox):
    namespace = gpu_team["namespace"]

    response = _deploy(client, gpu_team)

    endpoint = Endpoint.objects.get(name="llm-chat")
    assert response.status_code == 302
    assert response["Location"] == reverse("ai:server_detail", args=[endpoint.pk])
    assert (endpoint.kind, endpoint.project, endpoint.release.namespace) == ("ollama", gpu_team["project"], namespace)
    assert endpoint.base_url == f"http://llm-chat.{namespace}.svc.cluster.local:11434"
    assert endpoint.default_model == "qwen2.5:0.5b"
    pod = live_deployment(sandbox, namespace, "llm-chat").spec.template.spec
    container = pod.containers[0]
    assert container.image == "ollama/ollama:0.12.10"
    assert container.resources.requests["nvidia.com/gpu"] == "1"
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    assert pod.node_selector == {"nvidia.com/gpu.present": "true"}
    assert [(t.key, t.operator, t.effect) for t in pod.tolerations if t.key == "nvidia.com/gpu"] == [
        ("nvidia.com/gpu", "Exists", "NoSchedule")
    ]
    assert pod.volumes[0].persistent_volume_claim.claim_name == "llm-chat-models"
    assert container.volume_mounts[0].mount_path == "/root/.ollama"
    assert (container.readiness_probe.http_get.path, container.readiness_probe.http_get.port) == ("/", 11434)
    assert (container.liveness_probe.http_get.path, container.liveness_probe.http_get.port) == ("/", 11434)
    assert live_deployment(sandbox, namespace, "llm-chat").spec.strategy.type == "Recreate"
    core = k8s.CoreV1Api(sandbox.api_client)
    assert core.read_namespaced_service("llm-chat", namespace).spec.ports[0].port == 11434
    claim = core.read_namespaced_persistent_volume_claim("llm-chat-models", namespace)
    assert claim.spec.resources.requests["storage"] == "5Gi"
    assert wait_for(lambda: running_pods(sandbox, namespace, "kubemate.io/release=llm-chat"), timeout=60)
    assert running_pods(sandbox, namespace, "kubemate.io/release=llm-chat")[0].spec.node_name.startswith("gpu-node-")
    event = AuditEvent.objects.get(action="ai.server.deployed")
    assert (event.namespace, event.object_name, event.detail["gpus"]) == (namespace, "llm-chat", 1)


def test_the_pages_show_the_ready_pod_on_its_gpu_node_and_say_the_server_is_not_reachable_from_here(
    client, gpu_team, sandbox
):
    _deploy(client, gpu_team)
    endpoint = Endpoint.objects.get(name="llm-chat")
    wait_for(lambda: running_pods(sandbox, gpu_team["namespace"], "kubemate.io/release=llm-chat"), timeout=60)
    wait_for(lambda: live_deployment(sandbox, gpu_team["namespace"], "llm-chat").status.ready_replicas, timeout=60)
    full_resync(gpu_team["cluster"], [BY_KIND["Deployment"], BY_KIND["Pod"]])

    listing = client.get(reverse("ai:server_list"))
    detail = client.get(reverse("ai:server_detail", args=[endpoint.pk]))
    models = client.get(reverse("ai:server_live", args=[endpoint.pk]) + "?part=models")
    metrics = client.get(reverse("ai:server_live", args=[endpoint.pk]) + "?part=metrics")

    assert listing.status_code == 200
    assert "1/1 ready" in listing.content.decode()
    assert detail.status_code == 200
    assert "gpu-node-" in detail.content.decode()
    assert "nvidia.com/gpu × 1" in detail.content.decode()
    assert models.status_code == 200
    assert "Not reachable from the console" in models.content.decode()
    assert endpoint.base_url in models.content.decode()
    assert metrics.status_code == 200
    assert "Ollama exports no metrics" in metrics.content.decode()


def test_a_developer_without_ai_serve_gets_404_and_nothing_is_applied(client, gpu_team, sandbox):
    data = server_form(gpu_team["project"], gpu_team["namespace"], "llm-chat", storage_class=gpu_team["storage_class"])
    login(client, gpu_team["developer"])

    page = client.get(reverse("ai:server_new"))
    posted = client.post(reverse("ai:server_new"), data)
    preview = client.post(reverse("ai:server_preview"), data)

    assert (page.status_code, posted.status_code, preview.status_code) == (404, 404, 404)
    assert not Release.objects.exists()
    assert not Endpoint.objects.exists()
    assert objects_in(sandbox, gpu_team["namespace"]) == []


def test_ai_serve_without_releases_deploy_may_not_deploy_either(client, gpu_team, admin_user):
    role = Role.objects.create(slug="model-curator", name_en="Curator", name_zh="模型", capabilities=["ai.serve"])
    curator = UserFactory()
    account_services.create_binding(actor=admin_user, role=role, user=curator, project=gpu_team["project"])
    data = server_form(gpu_team["project"], gpu_team["namespace"], "llm-chat")

    page = login(client, curator).get(reverse("ai:server_new"))
    posted = client.post(reverse("ai:server_new"), data)

    assert (page.status_code, posted.status_code) == (404, 404)
    assert not Release.objects.exists()


def test_kubernetes_refusing_the_release_leaves_nothing_behind(client, gpu_team, sandbox):
    quota = k8s.V1ResourceQuota(
        metadata=k8s.V1ObjectMeta(name="storage"), spec=k8s.V1ResourceQuotaSpec(hard={"requests.storage": "1Gi"})
    )
    k8s.CoreV1Api(sandbox.api_client).create_namespaced_resource_quota(gpu_team["namespace"], quota)

    response = _deploy(client, gpu_team)

    assert response.status_code == 200
    assert "Kubernetes would refuse this release, so nothing was saved" in response.content.decode()
    assert "the quota of namespace" in response.content.decode()
    assert "exceeded quota: storage" in response.content.decode()
    assert not Release.objects.exists()
    assert not Endpoint.objects.exists()
    assert objects_in(sandbox, gpu_team["namespace"]) == []


def test_removing_the_server_removes_its_objects_release_and_endpoint(client, gpu_team, sandbox):
    _deploy(client, gpu_team)
    endpoint = Endpoint.objects.get(name="llm-chat")
    assert objects_in(sandbox, gpu_team["namespace"]) == [
        "Deployment/llm-chat",
        "PersistentVolumeClaim/llm-chat-models",
        "Service/llm-chat",
    ]

    response = login(client, gpu_team["owner"], recent_auth=True).post(reverse("ai:server_delete", args=[endpoint.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("ai:server_list")
    assert objects_in(sandbox, gpu_team["namespace"]) == []
    assert not Release.objects.exists()
    assert not Endpoint.objects.exists()
    event = AuditEvent.objects.get(action="ai.server.deleted")
    assert (event.namespace, event.object_name, event.result) == (gpu_team["namespace"], "llm-chat", "success")
    assert AuditEvent.objects.filter(action="releases.release.delete", object_name="llm-chat").exists()


def test_a_developer_may_not_remove_the_server(client, gpu_team, sandbox):
    _deploy(client, gpu_team)
    endpoint = Endpoint.objects.get(name="llm-chat")

    response = login(client, gpu_team["developer"], recent_auth=True).post(
        reverse("ai:server_delete", args=[endpoint.pk])
    )

    assert response.status_code == 404
    assert Endpoint.objects.filter(pk=endpoint.pk).exists()
    assert "Deployment/llm-chat" in objects_in(sandbox, gpu_team["namespace"])
