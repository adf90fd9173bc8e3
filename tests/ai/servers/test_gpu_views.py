"""The issue's GPU case end to end: a model server deployed from the form with one GPU lands on the sandbox's GPU
node (kwok), the GPU pages count it (node, namespace, project, pod), and the DCGM-named metrics the test's exporter
serves reach the GPU page through a real Prometheus, the allocation flagged idle at 0 % utilisation."""

import re

from django.urls import reverse
from kubernetes import client as k8s

from apps.ai.models import Endpoint
from tests.ai.gpu.conftest import resync
from tests.ai.servers.helpers import server_form
from tests.helpers import login, running_pods, wait_for


def attr(html: str, testid: str, key: str, name: str) -> str:
    """The ``data-<name>`` of the element whose data-testid is ``testid`` and that carries ``key``."""
    for tag in re.findall(rf'<[^>]*data-testid="{testid}"[^>]*>', html):
        if key in tag:
            found = re.search(rf'data-{name}="([^"]*)"', tag)
            return found.group(1) if found else ""
    raise AssertionError(f"no {testid} with {key}")


def test_a_server_with_a_gpu_lands_on_the_gpu_node_and_the_gpu_pages_count_it_with_its_dcgm_readings(
    client, gpu_team, sandbox, metrics, admin_user
):
    cluster, namespace = gpu_team["cluster"], gpu_team["namespace"]
    cluster.prometheus_url = metrics.url
    cluster.save(update_fields=["prometheus_url"])
    core = k8s.CoreV1Api(sandbox.api_client)
    core.create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "gpus"}, "spec": {"hard": {"requests.nvidia.com/gpu": "2"}}}
    )
    data = server_form(gpu_team["project"], namespace, "llm-gpu", storage_class=gpu_team["storage_class"])
    assert login(client, gpu_team["owner"]).post(reverse("ai:server_new"), data).status_code == 302
    assert Endpoint.objects.get(name="llm-gpu").release.namespace == namespace
    assert wait_for(lambda: running_pods(sandbox, namespace, "kubemate.io/release=llm-gpu"), timeout=90)
    pod = running_pods(sandbox, namespace, "kubemate.io/release=llm-gpu")[0]
    node = pod.spec.node_name
    assert node.startswith("gpu-node-")
    resync(cluster)

    login(client, gpu_team["owner"])
    page = client.get(reverse("ai:gpu_cluster", args=[cluster.pk])).content.decode()
    assert attr(page, "gpu-pod-row", f'data-pod="{pod.metadata.name}"', "namespace") == namespace
    assert attr(page, "gpu-namespace-row", f'data-namespace="{namespace}"', "namespace") == namespace
    assert pod.metadata.name in page and gpu_team["project"].name in page
    allocated = re.findall(r'data-resource="nvidia.com/gpu"[^>]*data-allocated="(\d+)"', page) or re.findall(
        r'data-allocated="(\d+)"[^>]*data-resource="nvidia.com/gpu"', page
    )
    assert "1" in allocated

    def used():
        status = core.read_namespaced_resource_quota("gpus", namespace).status
        return (status.used or {}).get("requests.nvidia.com/gpu") == "1"

    assert wait_for(used, timeout=60), "the quota controller did not count the server's GPU"
    quotas = client.get(reverse("ai:gpu_quotas", args=[cluster.pk])).content.decode()
    assert attr(quotas, "gpu-quota-row", f'data-namespace="{namespace}"', "hard") == "2"
    assert attr(quotas, "gpu-quota-row", f'data-namespace="{namespace}"', "used") == "1"

    labels = {
        "gpu": "0",
        "UUID": "GPU-7f3a9c1e",
        "Hostname": node,
        "modelName": "NVIDIA A10G",
        "namespace": namespace,
        "pod": pod.metadata.name,
        "container": "ollama",
    }
    for name, value in (
        ("DCGM_FI_DEV_GPU_UTIL", 0),
        ("DCGM_FI_DEV_FB_USED", 2048),
        ("DCGM_FI_DEV_FB_FREE", 20480),
        ("DCGM_FI_DEV_GPU_TEMP", 41),
        ("DCGM_FI_DEV_POWER_USAGE", 62.5),
    ):
        metrics.exporter.set(name, labels, value)
    metrics.wait_for('DCGM_FI_DEV_POWER_USAGE{UUID="GPU-7f3a9c1e"}', 62.5, timeout=30)

    part = client.get(reverse("ai:gpu_metrics", args=[cluster.pk])).content.decode()
    assert attr(part, "gpu-row", 'data-uuid="GPU-7f3a9c1e"', "temp") == "41.0"
    assert attr(part, "gpu-row", 'data-uuid="GPU-7f3a9c1e"', "power") == "62.5"
    assert attr(part, "gpu-row", 'data-uuid="GPU-7f3a9c1e"', "util") == "0.0"
    assert attr(part, "gpu-use-row", f'data-pod="{pod.metadata.name}"', "idle") == "true"

    login(client, admin_user)  # the whole cluster: every GPU and its node's readings
    whole = client.get(reverse("ai:gpu_metrics", args=[cluster.pk])).content.decode()
    assert attr(whole, "gpu-row", 'data-uuid="GPU-7f3a9c1e"', "temp") == "41.0"
    assert attr(whole, "gpu-node-reading", f'data-node="{node}"', "power") == "62.5"
