"""Inventory rows of GPU nodes and pods, built the way the sync stores them (no cluster is called)."""

from __future__ import annotations

import uuid

from apps.clusters.inventory.summaries import row_fields
from apps.clusters.models import Resource
from tests.clusters.inventory_rows import add, meta

OLD = "2026-01-01T08:00:00Z"


def gpu_node(cluster, name, *, gpus="4", product="NVIDIA-A10G", mig=None, taint=True, allocatable=None):
    """A GPU node: ``gpus`` of nvidia.com/gpu (None: none), MIG slices ``mig`` ({"1g.5gb": "7"}), the GPU taint."""
    capacity = {"cpu": "32", "memory": "128Gi", "pods": "110"}
    if gpus is not None:
        capacity["nvidia.com/gpu"] = gpus
    for profile, count in (mig or {}).items():
        capacity[f"nvidia.com/mig-{profile}"] = count
    labels = {"nvidia.com/gpu.present": "true", "kubernetes.io/hostname": name}
    if product:
        labels["nvidia.com/gpu.product"] = product
    spec = {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]} if taint else {}
    return add(
        cluster,
        "Node",
        {
            "metadata": meta(name, labels=labels),
            "spec": spec,
            "status": {
                "capacity": capacity,
                "allocatable": {**capacity, **(allocatable or {})},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        },
    )


def gpu_pod_obj(
    name,
    namespace,
    *,
    gpus=1,
    node="gpu-node-1",
    phase="Running",
    mig=None,
    limits_only=True,
    init_gpus=None,
    containers=1,
    owner=None,
    created=OLD,
):
    """A pod whose ``containers`` containers each ask for ``gpus`` nvidia.com/gpu (as limits, or as requests and
    limits) and ``mig`` slices ({"1g.5gb": 1})."""
    wanted = {}
    if gpus:
        wanted["nvidia.com/gpu"] = str(gpus)
    for profile, count in (mig or {}).items():
        wanted[f"nvidia.com/mig-{profile}"] = str(count)
    resources = {"limits": dict(wanted), "requests": {"cpu": "1"}}
    if not limits_only:
        resources["requests"].update(wanted)
    spec = {
        "containers": [
            {"name": f"c{i}", "image": "registry.bank.local/llm:1", "resources": resources} for i in range(containers)
        ],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }
    if node:
        spec["nodeName"] = node
    if init_gpus:
        spec["initContainers"] = [
            {"name": "warm", "image": "busybox", "resources": {"limits": {"nvidia.com/gpu": str(init_gpus)}}}
        ]
    return {
        "metadata": meta(name, namespace, {"app": name.rsplit("-", 1)[0]}, owner, created=created),
        "spec": spec,
        "status": {"phase": phase, "containerStatuses": [{"name": "c0", "ready": phase == "Running"}]},
    }


def gpu_pod(cluster, name, namespace, **kwargs):
    return add(cluster, "Pod", gpu_pod_obj(name, namespace, **kwargs))


def plain_pods(cluster, namespace, count, *, node="node-1"):
    """``count`` pods without GPUs, written in one statement (a big cluster's pods)."""
    rows = []
    for i in range(count):
        obj = {
            "metadata": {
                **meta(f"web-{i}", namespace),
                "resourceVersion": "1",
            },
            "spec": {
                "nodeName": node,
                "containers": [
                    {
                        "name": "app",
                        "image": "registry.bank.local/app:1.4.2",
                        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
                    },
                    {"name": "sidecar", "image": "envoy:1", "resources": {"requests": {"cpu": "50m"}}},
                ],
            },
            "status": {"phase": "Running", "containerStatuses": [{"name": "app", "ready": True}]},
        }
        rows.append(Resource(cluster=cluster, **row_fields("Pod", obj)))
    Resource.objects.bulk_create(rows, batch_size=2000)


def new_uid() -> str:
    return str(uuid.uuid4())
