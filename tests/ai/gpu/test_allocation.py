"""GPU capacity and allocation summed in SQL from inventory rows: whole GPUs and MIG slices, limits alone or with
requests, init containers, ended and unplaced pods, and a cluster of 15,000 pods answered in a few queries."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.ai.gpu import allocation
from tests.ai.gpu.rows import gpu_node, gpu_pod, plain_pods
from tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster():
    made = ClusterFactory(name="gpu-prod")
    gpu_node(made, "gpu-node-1", gpus="4")
    gpu_node(made, "gpu-node-2", gpus=None, mig={"1g.5gb": "7", "2g.10gb": "3"}, product="NVIDIA-A100-SXM4-40GB")
    gpu_node(made, "cpu-node-1", gpus=None, product="", taint=False)  # no GPU resource: not a GPU node
    return made


def test_the_gpu_nodes_carry_their_gpus_mig_slices_product_and_taints(cluster):
    nodes = {n.name: n for n in allocation.gpu_nodes(cluster)}

    assert sorted(nodes) == ["gpu-node-1", "gpu-node-2"]
    assert nodes["gpu-node-1"].amounts.capacity == {"nvidia.com/gpu": 4}
    assert nodes["gpu-node-1"].amounts.allocatable == {"nvidia.com/gpu": 4}
    assert nodes["gpu-node-1"].product == "NVIDIA-A10G"
    assert nodes["gpu-node-1"].taints == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert nodes["gpu-node-2"].amounts.capacity == {"nvidia.com/mig-1g.5gb": 7, "nvidia.com/mig-2g.10gb": 3}
    assert nodes["gpu-node-2"].product == "NVIDIA-A100-SXM4-40GB"
    assert nodes["gpu-node-2"].amounts.slices == 10


def test_pods_are_summed_by_node_and_namespace_as_the_scheduler_counts_them(cluster):
    gpu_pod(cluster, "llm-a", "ml", gpus=1)  # limits alone
    gpu_pod(cluster, "llm-b", "ml", gpus=2, limits_only=False, containers=1)  # requests and limits, counted once
    gpu_pod(cluster, "train-0", "research", gpus=1, containers=2)  # two containers with one each: 2
    gpu_pod(cluster, "warm-0", "research", gpus=1, init_gpus=3)  # an init container holding 3: max(1, 3) = 3
    gpu_pod(cluster, "done-0", "research", gpus=4, phase="Succeeded")  # ended: holds nothing
    gpu_pod(cluster, "wait-0", "research", gpus=2, node="", phase="Pending")  # not placed: waiting
    gpu_pod(cluster, "mig-0", "ml", gpus=0, mig={"1g.5gb": 2}, node="gpu-node-2")
    plain_pods(cluster, "web", 5)

    found = allocation.sums(cluster, None)

    assert found.by_node["gpu-node-1"].allocated == {"nvidia.com/gpu": 1 + 2 + 2 + 3}
    assert found.by_node["gpu-node-2"].allocated == {"nvidia.com/mig-1g.5gb": 2}
    assert found.by_namespace["ml"].allocated == {"nvidia.com/gpu": 3, "nvidia.com/mig-1g.5gb": 2}
    assert found.by_namespace["research"].allocated == {"nvidia.com/gpu": 5}
    assert found.by_namespace["research"].waiting == {"nvidia.com/gpu": 2}
    assert "web" not in found.by_namespace
    assert found.pods_by_node == {"gpu-node-1": 4, "gpu-node-2": 1, "": 1}
    assert found.pods_by_namespace == {"ml": 3, "research": 3}


def test_the_sums_and_the_pod_list_keep_to_the_namespaces_given(cluster):
    gpu_pod(cluster, "llm-a", "ml", gpus=1)
    gpu_pod(cluster, "train-0", "research", gpus=2)

    only_ml = allocation.sums(cluster, frozenset({"ml"}))
    pods, total = allocation.gpu_pods(cluster, frozenset({"ml"}))
    nothing = allocation.sums(cluster, frozenset())

    assert list(only_ml.by_namespace) == ["ml"]
    assert only_ml.by_node["gpu-node-1"].allocated == {"nvidia.com/gpu": 1}
    assert [(p.namespace, p.name, p.held, p.node) for p in pods] == [
        ("ml", "llm-a", {"nvidia.com/gpu": 1}, "gpu-node-1")
    ]
    assert total == 1
    assert nothing.by_namespace == {} and nothing.by_node == {}


def test_the_pod_list_is_cut_at_its_limit_and_counts_the_rest(cluster):
    for i in range(7):
        gpu_pod(cluster, f"llm-{i}", "ml", gpus=1)

    pods, total = allocation.gpu_pods(cluster, None, limit=3)

    assert [p.name for p in pods] == ["llm-0", "llm-1", "llm-2"]
    assert total == 7


def test_fifteen_thousand_pods_are_summed_in_two_queries_fast(cluster):
    plain_pods(cluster, "web", 15_000)
    for i in range(40):
        gpu_pod(cluster, f"llm-{i}", f"team-{i % 4}", gpus=1 + i % 2)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE clusters_resource")

    with CaptureQueriesContext(connection) as queries:
        started = time.monotonic()
        found = allocation.sums(cluster, None)
        pods, total = allocation.gpu_pods(cluster, None)
        seconds = time.monotonic() - started

    assert len(queries) == 2
    assert sum(a.allocated["nvidia.com/gpu"] for a in found.by_namespace.values()) == 60
    assert total == 40 and len(pods) == 40
    print(f"sums and pod list over 15,040 pods: {seconds * 1000:.0f} ms")
    assert seconds < 0.5
