"""Draining a node against the sandbox: two kwok nodes of our own, a Deployment and a DaemonSet on the first.

The nodes carry a taint only our pods tolerate, so nothing else lands on them and
the drain touches only this test's pods.
"""

import pytest
from kubernetes import client as k8s

from apps.clusters.actions.tasks import drain_node
from apps.core.deferred import render as R
from apps.core.models import AuditEvent, Job, JobLogLine
from tests.factories import UserFactory
from tests.helpers import (
    bind,
    create_namespace,
    delete_namespace,
    deployment,
    htmx_events,
    login,
    unique,
    url,
    wait_for,
)

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]
POOL_LABEL = "h6.kubemate.dev/pool"


def node_manifest(name: str, pool: str, *, unschedulable: bool) -> dict:
    resources = {"cpu": "16", "memory": "64Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {POOL_LABEL: pool, "kubernetes.io/hostname": name, "type": "kwok"},
            "annotations": {"kwok.x-k8s.io/node": "fake"},
        },
        "spec": {
            "unschedulable": unschedulable,
            "taints": [{"key": POOL_LABEL, "value": pool, "effect": "NoSchedule"}],
        },
        "status": {"capacity": resources, "allocatable": resources},
    }


def daemonset(name: str, pod_spec: dict) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "agent", "image": "registry.bank.example/agent:1"}], **pod_spec},
            },
        },
    }


def pods_by_node(sandbox, namespace: str, app: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pod in k8s.CoreV1Api(sandbox.api_client).list_namespaced_pod(namespace, label_selector=f"app={app}").items:
        if pod.status.phase == "Running" and not pod.metadata.deletion_timestamp:
            counts[pod.spec.node_name] = counts.get(pod.spec.node_name, 0) + 1
    return counts


@pytest.fixture
def pool(sandbox, registered_cluster, admin_user):
    """Node A runs 2 "web" pods and one DaemonSet pod; node B (empty, schedulable) takes the evicted pods."""
    core, apps = k8s.CoreV1Api(sandbox.api_client), k8s.AppsV1Api(sandbox.api_client)
    pool = unique("pool")
    node_a, node_b = f"h6-{pool}-a", f"h6-{pool}-b"
    namespace = unique("h6-drain")
    core.create_node(node_manifest(node_a, pool, unschedulable=False))
    core.create_node(node_manifest(node_b, pool, unschedulable=True))
    create_namespace(sandbox, namespace)
    placement = {
        "nodeSelector": {POOL_LABEL: pool},
        "tolerations": [{"key": POOL_LABEL, "operator": "Equal", "value": pool, "effect": "NoSchedule"}],
    }
    apps.create_namespaced_deployment(namespace, deployment("web", replicas=2, **placement))
    apps.create_namespaced_daemon_set(namespace, daemonset("agent", placement))
    assert wait_for(lambda: pods_by_node(sandbox, namespace, "web") == {node_a: 2}, timeout=60)
    assert wait_for(lambda: node_a in pods_by_node(sandbox, namespace, "agent"), timeout=60)
    core.patch_node(node_b, {"spec": {"unschedulable": None}})
    operator = UserFactory()
    bind(admin_user, registered_cluster, operator, "cluster-admin")
    yield {"cluster": registered_cluster, "a": node_a, "b": node_b, "namespace": namespace, "user": operator}
    delete_namespace(sandbox, namespace)
    for node in (node_a, node_b):
        core.delete_node(node)


def start(client, pool) -> Job:
    response = login(client, pool["user"], recent_auth=True).post(
        url("clusters:node_drain", pool["cluster"], name=pool["a"]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert htmx_events(response) == ["resource-changed"]
    assert 'data-testid="job-status"' in response.content.decode()
    return Job.objects.get(kind="clusters.drain_node")


def log_of(job: Job) -> list[str]:
    return [R(m) for m in job.log_lines.order_by("id").values_list("message", flat=True)]


def test_drain_asks_for_the_password_first(client, pool):
    response = login(client, pool["user"]).post(
        url("clusters:node_drain", pool["cluster"], name=pool["a"]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 204 and "/reauth/" in response["HX-Redirect"]
    assert not Job.objects.exists()


def test_drain_evicts_the_pods_and_the_replicaset_recreates_them_elsewhere(sandbox, client, pool):
    job = start(client, pool)
    assert job.actor == pool["user"] and job.target == f"cluster/sandbox/node/{pool['a']}"

    drain_node(str(job.pk), pool["cluster"].pk, pool["a"])

    job.refresh_from_db()
    assert (job.status, job.progress) == (Job.Status.SUCCEEDED, 100)
    lines = log_of(job)
    assert any(line.startswith(f"Leaving {pool['namespace']}/agent-") and "DaemonSet" in line for line in lines)
    assert sum(1 for line in lines if line.startswith(f"Evicted {pool['namespace']}/web-")) == 2
    assert f"Node {pool['a']} is drained: 2 pods evicted." in lines
    assert k8s.CoreV1Api(sandbox.api_client).read_node(pool["a"]).spec.unschedulable is True
    assert wait_for(lambda: pods_by_node(sandbox, pool["namespace"], "web") == {pool["b"]: 2}, timeout=60)
    assert pool["a"] in pods_by_node(sandbox, pool["namespace"], "agent")
    events = AuditEvent.objects.filter(object_name=pool["a"]).order_by("seq")
    assert [(e.action, e.result) for e in events] == [
        ("clusters.node.drain_started", "success"),
        ("clusters.node.drained", "success"),
    ]
    assert events[1].actor_id == pool["user"].pk and events[1].detail["evicted"] == 2


def test_a_disruption_budget_that_blocks_eviction_makes_the_drain_give_up_naming_it(sandbox, client, pool, settings):
    settings.KUBEMATE_DRAIN_TIMEOUT_SECONDS = 4
    k8s.PolicyV1Api(sandbox.api_client).create_namespaced_pod_disruption_budget(
        pool["namespace"],
        {"metadata": {"name": "web-budget"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}},
    )

    def budget_counted():
        status = (
            k8s.PolicyV1Api(sandbox.api_client)
            .read_namespaced_pod_disruption_budget("web-budget", pool["namespace"])
            .status
        )
        return status is not None and status.current_healthy == 2

    assert wait_for(budget_counted, timeout=30)
    job = start(client, pool)

    drain_node(str(job.pk), pool["cluster"].pk, pool["a"])

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert R(job.message).startswith("Gave up after 4 s: the disruption budget web-budget in namespace")
    assert "The node stays cordoned" in R(job.message)
    warnings = [R(m) for m in job.log_lines.filter(level=JobLogLine.Level.WARNING).values_list("message", flat=True)]
    assert any("cannot be evicted yet" in line and "web-budget" in line for line in warnings)
    assert pods_by_node(sandbox, pool["namespace"], "web") == {pool["a"]: 2}
    drained = AuditEvent.objects.get(action="clusters.node.drained")
    assert drained.result == "failure" and "web-budget" in drained.detail["error"]


def test_a_drain_in_production_waits_for_approval_and_the_approval_starts_it_as_the_maker(sandbox, client, pool):
    from apps.accounts.models import Role
    from apps.compliance.approvals import services as approvals
    from apps.compliance.models import ApprovalPolicy, ChangeRequest
    from tests.helpers import grant

    cluster = pool["cluster"]
    cluster.labels = {"env": "prod"}
    cluster.save(update_fields=["labels"])
    ApprovalPolicy.objects.create(name="Production nodes", cluster_labels={"env": "prod"}, actions=["nodes.drain"])
    checker = UserFactory()
    Role.objects.create(
        slug="change-approver", name_en="Change approver", name_zh="变更审批人", capabilities=["changes.approve"]
    )
    grant(checker, "change-approver")

    response = login(client, pool["user"], recent_auth=True).post(
        url("clusters:node_drain", cluster, name=pool["a"]), HTTP_HX_REQUEST="true"
    )

    assert "change request #" in response.content.decode()
    assert not Job.objects.filter(kind="clusters.drain_node").exists()
    assert not k8s.CoreV1Api(sandbox.api_client).read_node(pool["a"]).spec.unschedulable
    request = ChangeRequest.objects.get(action="nodes.drain")
    assert request.manifests == [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": pool["a"]}, "spec": {"unschedulable": True}}
    ]

    approvals.approve(actor=checker, pk=request.pk)

    job = Job.objects.get(kind="clusters.drain_node")
    assert job.actor == pool["user"]  # the maker's drain, run by the worker as them
    assert ChangeRequest.objects.get(pk=request.pk).status == ChangeRequest.Status.APPLIED
