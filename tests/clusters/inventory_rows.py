"""Inventory rows built the way the sync stores them, and "the bank": a cluster with two projects.

Pages that read the inventory run on these rows alone; no cluster is called (the cluster's API server
address points nowhere).
"""

import uuid
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Project
from apps.clusters.inventory import lists
from apps.clusters.models import Resource, SyncState
from tests.factories import ClusterFactory, ResourceFactory

OLD = "2026-01-01T08:00:00Z"


# Kubernetes objects as the sync stores them -------------------------------------------------------


def meta(name, namespace=None, labels=None, owner=None, uid=None, created=OLD):
    data = {"name": name, "uid": uid or str(uuid.uuid4()), "labels": labels or {}, "creationTimestamp": created}
    if namespace:
        data["namespace"] = namespace
    if owner is not None:
        data["ownerReferences"] = [
            {"kind": owner.kind, "name": owner.name, "uid": str(owner.uid), "controller": True, "apiVersion": "v1"}
        ]
    return data


def add(cluster, kind, obj, **extra):
    return ResourceFactory(cluster=cluster, kind=kind, namespace=obj["metadata"].get("namespace", ""), obj=obj, **extra)


def pod_obj(
    name,
    namespace,
    *,
    labels=None,
    owner=None,
    phase="Running",
    waiting=None,
    node="node-1",
    cpu="250m",
    memory="256Mi",
    created=OLD,
):
    state = {"waiting": {"reason": waiting, "message": "back-off"}} if waiting else {"running": {"startedAt": OLD}}
    return {
        "metadata": meta(name, namespace, labels, owner, created=created),
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "app",
                    "image": "registry.bank.local/app:1.4.2",
                    "resources": {"requests": {"cpu": cpu, "memory": memory}},
                }
            ],
        },
        "status": {
            "phase": phase,
            "podIP": "10.0.0.9",
            "containerStatuses": [
                {
                    "name": "app",
                    "ready": waiting is None and phase == "Running",
                    "restartCount": 7 if waiting else 0,
                    "state": state,
                }
            ],
        },
    }


def pod(cluster, name, namespace, **kwargs):
    return add(cluster, "Pod", pod_obj(name, namespace, **kwargs))


def deployment(cluster, name, namespace, *, replicas=2, ready=2, labels=None):
    labels = labels or {"app": name}
    return add(
        cluster,
        "Deployment",
        {
            "metadata": meta(name, namespace, labels),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app"}]}},
            },
            "status": {
                "readyReplicas": ready,
                "availableReplicas": ready,
                "updatedReplicas": ready,
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True" if ready >= replicas else "False",
                        "reason": "MinimumReplicasAvailable",
                    }
                ],
            },
        },
    )


def replicaset(cluster, name, namespace, owner, labels):
    return add(
        cluster,
        "ReplicaSet",
        {
            "metadata": meta(name, namespace, labels, owner),
            "spec": {"replicas": 2, "template": {"metadata": {"labels": labels}}},
            "status": {"readyReplicas": 2, "availableReplicas": 2},
        },
    )


def service(cluster, name, namespace, selector):
    return add(
        cluster,
        "Service",
        {
            "metadata": meta(name, namespace, {"app": name}),
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "10.96.0.12",
                "selector": selector,
                "ports": [{"port": 80, "protocol": "TCP"}],
            },
        },
    )


def route(cluster, name, namespace, backend):
    return add(
        cluster,
        "HTTPRoute",
        {
            "metadata": meta(name, namespace),
            "spec": {"hostnames": [f"{name}.bank.local"], "rules": [{"backendRefs": [{"name": backend, "port": 80}]}]},
            "status": {"parents": [{"conditions": [{"type": "Accepted", "status": "True"}]}]},
        },
    )


def hpa(cluster, name, namespace, target):
    return add(
        cluster,
        "HorizontalPodAutoscaler",
        {
            "metadata": meta(name, namespace),
            "spec": {
                "minReplicas": 2,
                "maxReplicas": 6,
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            },
            "status": {"currentReplicas": 2, "desiredReplicas": 2},
        },
    )


def event(
    cluster,
    namespace,
    about,
    *,
    reason="BackOff",
    message="Back-off restarting failed container",
    kind="Warning",
    last="2026-11-27T08:00:00Z",
):
    return add(
        cluster,
        "Event",
        {
            "metadata": meta(f"{about.name}.{uuid.uuid4().hex[:8]}", namespace),
            "type": kind,
            "reason": reason,
            "message": message,
            "count": 3,
            "lastTimestamp": last,
            "involvedObject": {"kind": about.kind, "name": about.name, "uid": str(about.uid), "namespace": namespace},
        },
    )


def node(cluster, name, *, ready=True, unschedulable=False, cpu="8", memory="32Gi"):
    return add(
        cluster,
        "Node",
        {
            "metadata": meta(name, labels={"node-role.kubernetes.io/worker": ""}),
            "spec": {"unschedulable": unschedulable},
            "status": {
                "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
                "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
                "conditions": [
                    {"type": "Ready", "status": "True" if ready else "False", "reason": "KubeletReady"},
                    {"type": "MemoryPressure", "status": "False"},
                ],
                "nodeInfo": {"kubeletVersion": "v1.31.2"},
            },
        },
    )


def namespace(cluster, name):
    return add(cluster, "Namespace", {"metadata": meta(name), "status": {"phase": "Active"}})


def secret(cluster, name, namespace_):
    return add(
        cluster, "Secret", {"metadata": meta(name, namespace_), "type": "Opaque", "data": {"password": "c2VjcmV0"}}
    )


def metrics(cluster, kind, name, namespace_="", cpu=1500, memory=2**30):
    return Resource.objects.create(
        cluster=cluster,
        kind=kind,
        namespace=namespace_,
        name=name,
        uid=uuid.uuid4(),
        resource_version="1",
        summary={"cpu_millicores": cpu, "memory_bytes": memory},
    )


def synced(cluster, seconds_ago=12, state=SyncState.State.WATCHING, message=""):
    for kind in ("Pod", "Node", "Event"):
        SyncState.objects.update_or_create(
            cluster=cluster,
            kind=kind,
            defaults={"state": state, "heard_at": timezone.now() - timedelta(seconds=seconds_ago), "message": message},
        )


def build_bank():
    """A production cluster with a payments app (deployment, replica set, pods, service, route, HPA, events)."""
    cluster = ClusterFactory(name="prod-sh", environment="production", region="shanghai-1")
    for name in ("payments", "lending", "kube-system"):
        namespace(cluster, name)
    node(cluster, "node-1")
    node(cluster, "node-2", ready=False)
    node(cluster, "node-3", unschedulable=True)
    labels = {"app": "pay-api"}
    dep = deployment(cluster, "pay-api", "payments", labels=labels)
    rs = replicaset(cluster, "pay-api-7c9f", "payments", dep, labels)
    pods = [pod(cluster, f"pay-api-7c9f-{i}", "payments", labels=labels, owner=rs) for i in ("a", "b")]
    svc = service(cluster, "pay-api", "payments", labels)
    service(cluster, "other", "payments", {"app": "other"})
    rt = route(cluster, "pay", "payments", "pay-api")
    scaler = hpa(cluster, "pay-api", "payments", "pay-api")
    event(cluster, "payments", dep, reason="ScalingReplicaSet", message="Scaled up", kind="Normal")
    event(cluster, "payments", pods[0], reason="Unhealthy", message="Readiness probe failed")
    add(
        cluster,
        "EndpointSlice",
        {
            "metadata": meta("pay-api-x1", "payments", {"kubernetes.io/service-name": "pay-api"}),
            "endpoints": [{"addresses": ["10.0.0.9"], "conditions": {"ready": True}}],
        },
    )
    loan = deployment(cluster, "loan-api", "lending", replicas=2, ready=0)
    crashing = pod(cluster, "loan-api-55d-x", "lending", labels={"app": "loan-api"}, waiting="CrashLoopBackOff")
    event(cluster, "lending", crashing, reason="BackOff", message="Back-off restarting failed container loan")
    stuck = pod(cluster, "batch-1", "lending", phase="Pending", node="", created="2026-01-01T00:00:00Z")
    secret(cluster, "db-password", "payments")
    secret(cluster, "loan-db", "lending")
    synced(cluster)
    payments = Project.objects.create(cluster=cluster, slug="payments", name="Payments", namespaces=["payments"])
    lending = Project.objects.create(cluster=cluster, slug="lending", name="Lending", namespaces=["lending"])
    return {
        "cluster": cluster,
        "deployment": dep,
        "replicaset": rs,
        "pods": pods,
        "service": svc,
        "route": rt,
        "hpa": scaler,
        "loan": loan,
        "crashing": crashing,
        "stuck": stuck,
        "payments": payments,
        "lending": lending,
    }


def list_url(cluster, slug, query=""):
    return reverse("clusters:resource_list", args=[cluster.pk, slug]) + (f"?{query}" if query else "")


def detail_url(resource):
    return reverse(
        "clusters:resource_detail",
        args=[resource.cluster_id, lists.SLUG_OF[resource.kind], resource.namespace or "_", resource.name],
    )
