import pytest
from kubernetes import client as k8s

from apps.accounts import services as account_services
from apps.accounts.models import Project, Role
from apps.accounts.reconcile import reconcile_rbac
from apps.clusters.inventory.sync import full_resync
from apps.clusters.kinds import BY_KIND
from tests.factories import UserFactory
from tests.helpers import create_namespace, delete_namespace, unique, wait_for

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def gpu_node_name(sandbox) -> str:
    nodes = k8s.CoreV1Api(sandbox.api_client).list_node(label_selector="nvidia.com/gpu.product").items
    assert nodes, "the sandbox has no GPU node"
    return nodes[0].metadata.name


def pods_on(sandbox, node: str, *, gpu_only: bool = True) -> list:
    """The pods bound to ``node`` that hold GPUs and are not finished (deleted ones still hold them)."""
    pods = k8s.CoreV1Api(sandbox.api_client).list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
    return [
        p
        for p in pods
        if p.status.phase not in ("Succeeded", "Failed")
        and (
            not gpu_only
            or any(
                key.startswith("nvidia.com/")
                for c in p.spec.containers
                for key in {**(c.resources.limits or {}), **(c.resources.requests or {})}
            )
        )
    ]


def gpu_deployment(name: str, *, resource: str = "nvidia.com/gpu", count: int = 1) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "model",
                            "image": "registry.bank.example/llm:1.0",
                            "resources": {"limits": {resource: str(count)}, "requests": {"cpu": "100m"}},
                        }
                    ],
                    "tolerations": [GPU_TOLERATION],
                },
            },
        },
    }


def deploy(sandbox, namespace: str, name: str, **kwargs) -> str:
    """Create a GPU Deployment and wait for its pod to run; the pod's name."""
    k8s.AppsV1Api(sandbox.api_client).create_namespaced_deployment(namespace, gpu_deployment(name, **kwargs))

    def running():
        pods = k8s.CoreV1Api(sandbox.api_client).list_namespaced_pod(namespace, label_selector=f"app={name}").items
        return [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]

    pods = wait_for(running, timeout=60)
    assert pods, f"the pod of {name} did not run"
    return pods[0].metadata.name


def resync(cluster) -> None:
    full_resync(cluster, [BY_KIND["Node"], BY_KIND["Namespace"], BY_KIND["Pod"]])


@pytest.fixture
def gpu_teams(sandbox, registered_cluster, admin_user):
    """Two projects, each with a namespace of its own in the sandbox and a viewer; a user whose role sees
    workloads but not GPUs; the GPU node free of GPU pods left by earlier tests; RBAC projected."""
    node = gpu_node_name(sandbox)
    assert wait_for(lambda: not pods_on(sandbox, node), timeout=90), "GPU pods of an earlier test are still there"
    names = {"research": unique("gpu-res"), "lending": unique("gpu-lend")}
    for namespace in names.values():
        create_namespace(sandbox, namespace)
    projects = {
        team: account_services.save_project(
            actor=admin_user,
            project=Project(cluster=registered_cluster, slug=unique("p"), name=team.title(), namespaces=[namespace]),
        )
        for team, namespace in names.items()
    }
    viewers = {team: UserFactory() for team in names}
    for team, user in viewers.items():
        account_services.create_binding(
            actor=admin_user, role=Role.objects.get(slug="viewer"), user=user, project=projects[team]
        )
    no_ai_role = Role.objects.create(
        slug=unique("no-ai"), name_en="Workloads only", name_zh="仅工作负载", capabilities=["workloads.view"]
    )
    no_ai = UserFactory()
    account_services.create_binding(actor=admin_user, role=no_ai_role, user=no_ai, project=projects["research"])
    reconcile_rbac(registered_cluster)
    yield {
        "cluster": registered_cluster,
        "node": node,
        "namespaces": names,
        "projects": projects,
        "viewers": viewers,
        "no_ai": no_ai,
        "admin": admin_user,
    }
    for namespace in names.values():
        delete_namespace(sandbox, namespace)
