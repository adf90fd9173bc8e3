"""Pod and workload checks against real Deployments in the sandbox, read from the inventory its full resync lists.

kwok plays the kubelets: pods scheduled on its nodes become Running and ready. What only a kubelet writes (a
container crash-looping, killed for memory, waiting on an image pull) is written here through the pods' status
subresource, where a kubelet writes it; the API server validates it like any status. The context sees only the
test's namespace (``clustera_context``): the sandbox is shared with tests running at the same time.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kubernetes import client as k8s

from apps.clusters.inventory.sync import full_resync
from apps.clusters.kinds import BY_KIND
from apps.core.deferred import render
from apps.inspection import runner
from apps.inspection.catalogue import CATALOGUE
from apps.inspection.models import Outcome
from tests.helpers import wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]

RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
PROBE = {"httpGet": {"path": "/healthz", "port": 8080}}
IMAGE = "registry.bank.example/pay:1.4"
POD_CHECKS = (
    "cluster.pods.pending",
    "cluster.pods.crash_looping",
    "cluster.pods.oom_killed",
    "cluster.pods.restarts",
    "cluster.pods.image_pull",
)
HYGIENE_CHECKS = (
    "cluster.workloads.no_requests",
    "cluster.workloads.no_memory_limit",
    "cluster.workloads.no_readiness_probe",
    "cluster.workloads.no_liveness_probe",
    "cluster.workloads.single_replica_no_pdb",
)


def run(ctx, check_id, cluster):
    return runner.run_one(ctx, CATALOGUE[check_id], cluster)


def subjects(result) -> set[str]:
    return {f.subject for f in result.findings}


def tidy_container() -> dict:
    return {"name": "app", "image": IMAGE, "resources": RESOURCES, "readinessProbe": PROBE, "livenessProbe": PROBE}


def deployment(name: str, replicas: int, container: dict, *, labels: dict | None = None, **pod_spec) -> dict:
    selector = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**selector, **(labels or {})}},
                "spec": {"containers": [container], **pod_spec},
            },
        },
    }


def budget(name: str, selector: dict) -> dict:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {"minAvailable": 1, "selector": selector},
    }


def pods(core, namespace: str, app: str, phase: str = "Running") -> list:
    found = core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
    return sorted(
        (p for p in found if p.status.phase == phase and not p.metadata.deletion_timestamp),
        key=lambda p: p.metadata.name,
    )


def container_status(*, restarts: int, waiting: dict, last: dict | None = None, image: str = IMAGE) -> dict:
    status = {
        "name": "app",
        "image": image,
        "imageID": "",
        "ready": False,
        "started": False,
        "restartCount": restarts,
        "state": {"waiting": waiting},
    }
    if last:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        status["lastState"] = {"terminated": {**last, "startedAt": now, "finishedAt": now}}
    return status


def crash(restarts: int, reason: str, exit_code: int) -> dict:
    waiting = {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container=app"}
    return container_status(restarts=restarts, waiting=waiting, last={"reason": reason, "exitCode": exit_code})


def write_status(core, namespace: str, pod, statuses: list[dict]) -> None:
    """What the kubelet writes: the pod stays Running, its container waits."""
    core.patch_namespaced_pod_status(pod.metadata.name, namespace, {"status": {"containerStatuses": statuses}})


def resync(cluster, *kinds: str) -> None:
    full_resync(cluster, [BY_KIND[kind] for kind in kinds])


def test_pods_are_reported_per_workload_with_the_worst_pod_as_example(
    sandbox, registered_cluster, namespace, clustera_context
):
    core, apps = k8s.CoreV1Api(sandbox.api_client), k8s.AppsV1Api(sandbox.api_client)
    for body in (
        deployment("steady", 2, tidy_container()),
        deployment("crashy", 3, tidy_container()),
        deployment("pully", 1, tidy_container()),
        deployment("stuck", 1, tidy_container(), nodeSelector={"clustera.kubemate.dev/pool": "none"}),
    ):
        apps.create_namespaced_deployment(namespace, body)
    assert wait_for(lambda: len(pods(core, namespace, "crashy")) == 3 and len(pods(core, namespace, "pully")) == 1, 60)
    assert wait_for(lambda: len(pods(core, namespace, "steady")) == 2 and pods(core, namespace, "stuck", "Pending"), 60)
    first, second, _third = pods(core, namespace, "crashy")
    write_status(core, namespace, first, [crash(9, "OOMKilled", 137)])
    write_status(core, namespace, second, [crash(2, "Error", 1)])
    pulling = {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{IMAGE}-missing"'}
    (pully,) = pods(core, namespace, "pully")
    write_status(core, namespace, pully, [container_status(restarts=0, waiting=pulling, image=f"{IMAGE}-missing")])
    resync(registered_cluster, "Pod")

    ctx = clustera_context(namespace=namespace)
    results = {check_id: run(ctx, check_id, registered_cluster) for check_id in POD_CHECKS}

    crashy, pully_subject, stuck = (f"Deployment {namespace}/{name}" for name in ("crashy", "pully", "stuck"))
    assert {k: subjects(r) for k, r in results.items()} == {
        "cluster.pods.pending": set(),  # pending for seconds, not ten minutes
        "cluster.pods.crash_looping": {crashy},
        "cluster.pods.oom_killed": {crashy},
        "cluster.pods.restarts": {crashy},
        "cluster.pods.image_pull": {pully_subject},
    }
    looping = results["cluster.pods.crash_looping"].findings[0]
    assert looping.namespace == namespace
    assert looping.severity == "warning"  # two of three pods: it still serves
    assert looping.facts.items() >= {"pods": 3, "affected": 2, "example": first.metadata.name, "restarts": 9}.items()
    assert looping.facts["last"] == "OOMKilled (137)"
    assert render(looping.message) == (
        f"2 of 3 pods of {crashy} are crash-looping; container app of {first.metadata.name} restarted 9 times, "
        "last ended OOMKilled (137)."
    )
    killed = results["cluster.pods.oom_killed"].findings[0]
    assert (
        killed.facts.items()
        >= {"affected": 1, "container": "app", "limit": "256Mi", "example": first.metadata.name}.items()
    )
    assert (
        results["cluster.pods.restarts"].findings[0].facts.items() >= {"affected": 1, "restarts": 9, "limit": 5}.items()
    )
    pull = results["cluster.pods.image_pull"].findings[0]
    assert pull.severity == "critical"  # its only pod: the workload is down
    assert pull.facts["reason"] == "ImagePullBackOff" and pull.facts["image"] == f"{IMAGE}-missing"
    assert results["cluster.pods.pending"].status == Outcome.Status.PASSED

    strict = clustera_context(namespace=namespace, thresholds={"pod.pending_minutes": 0, "pod.restart_count": 9})
    pending = run(strict, "cluster.pods.pending", registered_cluster)
    assert subjects(pending) == {stuck}
    assert "node" in pending.findings[0].facts["why"]  # the scheduler's "0/N nodes are available: ..."
    assert run(strict, "cluster.pods.restarts", registered_cluster).status == Outcome.Status.PASSED

    # Fixed: the crash-looping and unpullable workloads are gone, the rest runs.
    apps.delete_namespaced_deployment("crashy", namespace)
    apps.delete_namespaced_deployment("pully", namespace)
    assert wait_for(lambda: not pods(core, namespace, "crashy") and not pods(core, namespace, "pully"), 60)
    resync(registered_cluster, "Pod")
    fixed = clustera_context(namespace=namespace)
    assert {k: run(fixed, k, registered_cluster).status for k in POD_CHECKS} == dict.fromkeys(
        POD_CHECKS, Outcome.Status.PASSED
    )


def test_workloads_without_requests_limits_probes_or_a_budget_for_their_single_replica(
    sandbox, registered_cluster, namespace, clustera_context
):
    core, apps = k8s.CoreV1Api(sandbox.api_client), k8s.AppsV1Api(sandbox.api_client)
    policy = k8s.PolicyV1Api(sandbox.api_client)
    protected = {"protected": "yes"}
    for body in (
        deployment("steady", 2, tidy_container()),
        deployment("guarded", 1, tidy_container(), labels=protected),
        deployment("bare", 1, {"name": "app", "image": IMAGE}),
    ):
        apps.create_namespaced_deployment(namespace, body)
    expression = {"matchExpressions": [{"key": "protected", "operator": "In", "values": ["yes"]}]}
    policy.create_namespaced_pod_disruption_budget(namespace, budget("protect", expression))
    assert wait_for(lambda: all(len(pods(core, namespace, app)) >= 1 for app in ("steady", "guarded", "bare")), 60)
    resync(registered_cluster, "Pod", "Deployment", "StatefulSet")
    # Budgets never read are not "no budget".
    unread = run(clustera_context(namespace=namespace), "cluster.workloads.single_replica_no_pdb", registered_cluster)
    assert unread.status == Outcome.Status.NOT_CHECKED
    assert "disruption budgets of cluster sandbox have not been read" in render(unread.reason)
    resync(registered_cluster, "PodDisruptionBudget")

    ctx = clustera_context(namespace=namespace)
    results = {check_id: run(ctx, check_id, registered_cluster) for check_id in HYGIENE_CHECKS}

    bare = f"Deployment {namespace}/bare"
    assert {k: subjects(r) for k, r in results.items()} == {key: {bare} for key in HYGIENE_CHECKS}
    assert results["cluster.workloads.no_requests"].findings[0].facts["containers"] == ["app (cpu, memory)"]
    assert results["cluster.workloads.no_readiness_probe"].findings[0].facts["containers"] == ["app"]
    assert render(results["cluster.workloads.no_memory_limit"].findings[0].message) == (
        f"{bare} runs containers without a memory limit: app."
    )
    alone = results["cluster.workloads.single_replica_no_pdb"].findings[0]
    assert alone.namespace == namespace and alone.facts["budgets_in_namespace"] == 1

    # A budget of its own, then requests, a limit and probes: every hygiene check passes.
    policy.create_namespaced_pod_disruption_budget(namespace, budget("bare", {"matchLabels": {"app": "bare"}}))
    apps.patch_namespaced_deployment(
        "bare", namespace, {"spec": {"template": {"spec": {"containers": [tidy_container()]}}}}
    )

    def rolled_out() -> bool:
        running = core.list_namespaced_pod(namespace, label_selector="app=bare").items
        live = [p for p in running if not p.metadata.deletion_timestamp]
        return len(live) == 1 and live[0].spec.containers[0].resources.requests is not None

    assert wait_for(rolled_out, 60)
    resync(registered_cluster, "Pod", "Deployment", "PodDisruptionBudget")
    fixed = clustera_context(namespace=namespace)
    assert {k: run(fixed, k, registered_cluster).status for k in HYGIENE_CHECKS} == dict.fromkeys(
        HYGIENE_CHECKS, Outcome.Status.PASSED
    )


def autoscaler(name: str, low: int, high: int) -> dict:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": low,
            "maxReplicas": high,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
                }
            ],
        },
    }


def test_an_autoscaler_held_at_its_maximum_is_a_finding(sandbox, registered_cluster, namespace, clustera_context):
    """The sandbox's controller-manager scales on metrics-server's readings of kwok's pod usage annotations."""
    apps = k8s.AppsV1Api(sandbox.api_client)
    scaling = k8s.AutoscalingV2Api(sandbox.api_client)
    for name, replicas, usage in (("busy", 2, "400m"), ("calm", 1, "10m")):
        body = deployment(name, replicas, tidy_container())
        body["spec"]["template"]["metadata"]["annotations"] = {"kwok.x-k8s.io/usage-cpu": usage}
        apps.create_namespaced_deployment(namespace, body)
    scaling.create_namespaced_horizontal_pod_autoscaler(namespace, autoscaler("busy", 1, 2))
    scaling.create_namespaced_horizontal_pod_autoscaler(namespace, autoscaler("calm", 1, 3))

    def limited() -> bool:
        status = scaling.read_namespaced_horizontal_pod_autoscaler_status("busy", namespace).status
        return status.current_replicas == 2 and any(
            c.type == "ScalingLimited" and c.status == "True" and c.reason == "TooManyReplicas"
            for c in status.conditions or []
        )

    assert wait_for(limited, timeout=120, interval=0.5)
    resync(registered_cluster, "HorizontalPodAutoscaler")

    found = run(clustera_context(namespace=namespace), "cluster.hpa.at_max", registered_cluster)

    assert subjects(found) == {f"HorizontalPodAutoscaler {namespace}/busy"}
    finding = found.findings[0]
    assert finding.namespace == namespace
    assert finding.facts.items() >= {"max": 2, "current": 2, "wants_more": True}.items()
    assert render(finding.message).startswith("Autoscaler busy keeps busy at its maximum of 2 replicas. ")

    scaling.delete_namespaced_horizontal_pod_autoscaler("busy", namespace)
    resync(registered_cluster, "HorizontalPodAutoscaler")
    calm_only = run(clustera_context(namespace=namespace), "cluster.hpa.at_max", registered_cluster)
    assert calm_only.status == Outcome.Status.PASSED
